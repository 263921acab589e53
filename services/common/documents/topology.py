"""`topology`: which services exist, their instances, addresses and roles (desired layout)."""

from __future__ import annotations

from pydantic import Field, field_validator

from ._base import Model

__all__ = ["Instance", "Service", "Topology"]


class Instance(Model):
    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")
    address: str
    roles: list[str] = Field(default_factory=list, max_length=32)

    @field_validator("address")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{value!r} is not host:port with a port in 1..65535")
        return value

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: list[str]) -> list[str]:
        if any(not r.strip() for r in value):
            raise ValueError("roles must not be empty strings")
        return list(dict.fromkeys(value))


class Service(Model):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9-]*$")
    instances: list[Instance] = Field(default_factory=list, max_length=1024)

    @field_validator("instances")
    @classmethod
    def _unique_ids(cls, value: list[Instance]) -> list[Instance]:
        seen: set[str] = set()
        for inst in value:
            if inst.id in seen:
                raise ValueError(f"instance id {inst.id!r} appears twice")
            seen.add(inst.id)
        return value


class Topology(Model):
    services: list[Service] = Field(default_factory=list, max_length=256)

    @field_validator("services")
    @classmethod
    def _unique_names(cls, value: list[Service]) -> list[Service]:
        names = [s.name for s in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"service {dupes[0]!r} appears twice")
        return value
