"""Who exists in a run: users, their devices, groups, and which worker process drives whom.

Deterministic from (run_id, seed), so the parent and every worker derive the same plan
from a few numbers instead of shipping it around. User ids carry the run id, so every run
starts with fresh conversations (seq 1) even against a server that has seen earlier runs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from services.common.model import c2c_conversation_id, c2c_members, group_conversation_id

from .params import LoadTestParams

__all__ = ["Plan", "device_key"]


def device_key(user_id: str, device_id: str) -> str:
    return f"{user_id}/{device_id}"


@dataclass(slots=True)
class Plan:
    run_id: str
    users: list[str]
    devices: list[str]  # device ids every user has
    offline: set[str]  # users connected only at the end
    groups: dict[str, list[str]]  # group id -> members, creator first
    workers: int
    user_groups: dict[str, list[str]] = field(default_factory=dict)
    contacts: dict[str, list[str]] = field(default_factory=dict)  # user -> fixed 1:1 peers

    @classmethod
    def build(cls, params: LoadTestParams, *, run_id: str) -> Plan:
        rng = random.Random(f"{run_id}:{params.seed}")
        users = [f"lt{run_id}u{i}" for i in range(params.users)]
        devices = [f"d{j}" for j in range(params.devices_per_user)]
        offline = set(rng.sample(users, params.offline_users))
        groups = {f"lt{run_id}g{g}": rng.sample(users, params.group_size) for g in range(params.groups)}
        plan = cls(run_id=run_id, users=users, devices=devices, offline=offline, groups=groups, workers=params.workers)
        for group_id, members in groups.items():
            for member in members:
                plan.user_groups.setdefault(member, []).append(group_id)
        if params.contacts:
            for user in users:  # symmetric: if a lists b, b may also talk to a
                for peer in rng.sample([u for u in users if u != user], min(params.contacts, len(users) - 1)):
                    plan.contacts.setdefault(user, []).append(peer)
                    plan.contacts.setdefault(peer, []).append(user)
        return plan

    def worker_of(self, user_id: str) -> int:
        """All devices of a user live in one worker (round-robin over users)."""
        return int(user_id.rsplit("u", 1)[1]) % self.workers

    def users_of_worker(self, worker: int) -> list[str]:
        return [u for u in self.users if self.worker_of(u) == worker]

    def online_users_of_worker(self, worker: int) -> list[str]:
        return [u for u in self.users_of_worker(worker) if u not in self.offline]

    def members(self, conversation_id: str) -> list[str]:
        kind, _, rest = conversation_id.partition(":")
        if kind == "group":
            return self.groups.get(rest, [])
        return list(c2c_members(conversation_id))

    def recipient_devices(self, conversation_id: str) -> list[str]:
        """Every device of every member, the sender's own devices included (protocol.md)."""
        return [device_key(u, d) for u in self.members(conversation_id) for d in self.devices]

    def pick_conversation(self, sender: str, rng: random.Random, *, group_fraction: float) -> str:
        groups = self.user_groups.get(sender)
        if groups and rng.random() < group_fraction:
            return group_conversation_id(rng.choice(groups))
        peers = self.contacts.get(sender)
        if peers:
            return c2c_conversation_id(sender, rng.choice(peers))
        while True:
            other = rng.choice(self.users)
            if other != sender:
                return c2c_conversation_id(sender, other)
