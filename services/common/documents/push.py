"""`push`: offline-push rules (retries, quiet hours in a time zone, batching) and channels."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationInfo, field_validator

from ._base import Duration, Model, TimeOfDay

__all__ = ["QuietHours", "PushRules", "Channels", "PushConfig"]


class QuietHours(Model):
    start: TimeOfDay
    end: TimeOfDay
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like 'Asia/Shanghai')") from exc
        return value

    @field_validator("end")
    @classmethod
    def _not_empty(cls, value: str, info: ValidationInfo) -> str:
        if value == info.data.get("start"):
            raise ValueError("equals start (an empty window); remove quiet_hours instead")
        return value


class PushRules(Model):
    max_retry: int = Field(3, ge=0, le=100)
    retry_interval: Duration = 60
    quiet_hours: QuietHours | None = None
    batch_size: int = Field(100, gt=0, le=10_000)


class _Channel(Model):
    enabled: bool = True
    credentials_ref: str | None = None  # a secret's name, never the secret itself


class Apns(_Channel):
    sandbox: bool = False
    topic: str = Field(min_length=1)


class Fcm(_Channel):
    project_id: str = Field(min_length=1)


class Hms(_Channel):
    app_id: str = Field(min_length=1)


class MiPush(_Channel):
    package_name: str = Field(min_length=1)


class Channels(Model):
    apns: Apns | None = None
    fcm: Fcm | None = None
    hms: Hms | None = None
    mipush: MiPush | None = None


class PushConfig(Model):
    push_rules: PushRules = PushRules()
    channels: Channels = Channels()
