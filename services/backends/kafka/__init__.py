"""Kafka adapter for the Log port (aiokafka)."""

from __future__ import annotations

__all__ = ["KafkaLog"]


def __getattr__(name: str):
    if name == "KafkaLog":
        from .log import KafkaLog

        return KafkaLog
    raise AttributeError(name)
