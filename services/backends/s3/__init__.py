"""S3 adapter for the ObjectStore port (the `minio` Python client, which speaks S3 to any server)."""

from __future__ import annotations

__all__ = ["S3ObjectStore"]


def __getattr__(name: str):
    if name == "S3ObjectStore":
        from .objectstore import S3ObjectStore

        return S3ObjectStore
    raise AttributeError(name)
