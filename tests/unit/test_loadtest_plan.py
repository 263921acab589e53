"""The load tester's plan: fixed 1:1 contacts per user, or anyone with --contacts 0."""

from __future__ import annotations

import random

from flarectl.loadtest.params import build_params
from flarectl.loadtest.plan import Plan
from services.common.model import c2c_members


def _peers(plan: Plan, sender: str, picks: int = 400) -> set[str]:
    rng = random.Random(3)
    out = set()
    for _ in range(picks):
        a, b = c2c_members(plan.pick_conversation(sender, rng, group_fraction=0))
        out.add(b if a == sender else a)
    return out


def test_contacts_bound_who_a_user_talks_to_and_are_symmetric(tmp_path):
    params = build_params(users=50, contacts=3, rate=10, duration="1s", token_secret="s", seed=1)
    plan = Plan.build(params, run_id="r1")
    sender = plan.users[0]
    assert _peers(plan, sender) == set(plan.contacts[sender])
    assert 3 <= len(set(plan.contacts[sender])) < 49
    assert all(sender in plan.contacts[peer] for peer in plan.contacts[sender])
    assert Plan.build(params, run_id="r1").contacts == plan.contacts  # workers rebuild the same plan


def test_zero_contacts_means_anyone(tmp_path):
    params = build_params(users=20, contacts=0, rate=10, duration="1s", token_secret="s", seed=1)
    plan = Plan.build(params, run_id="r2")
    assert len(_peers(plan, plan.users[0])) > 10
