"""`s3://access:secret@host:port/bucket[?secure=true&region=…]` — the ObjectStore port on
any S3 server (SeaweedFS in the tests). The minio client is synchronous, so every call runs in a worker thread;
the bucket is created on start if it is missing.
"""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error

from services.backends.objectstore import ObjectInfo
from services.common.errors import BackendError, BackendUnavailable, FlareError, InvalidInput, NotFound

__all__ = ["S3ObjectStore"]

_DEFAULT_TYPE = "application/octet-stream"
_MAX_KEY = 1024
_NOT_FOUND = {"NoSuchKey", "NoSuchObject", "NoSuchBucket", "XMinioParentIsObject", "ResourceNotFound"}


def _validate_key(key: str) -> str:
    # The same keys as the directory store accepts, so data moves between them unchanged.
    if not isinstance(key, str) or not key or len(key) > _MAX_KEY:
        raise InvalidInput(f"object keys are 1..{_MAX_KEY} characters", key=key)
    if key.startswith("/") or "\\" in key or not key.isprintable():
        raise InvalidInput("object keys are relative, printable, and use '/' as separator", key=key)
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidInput("object keys may not contain empty, '.' or '..' segments", key=key)
    return key


def _etag(value: str | None) -> str:
    return (value or "").strip('"')


class S3ObjectStore:
    def __init__(self, endpoint: str, *, access_key: str, secret_key: str, bucket: str, secure: bool = False,
                 region: str = "us-east-1") -> None:
        self.endpoint = endpoint
        self.bucket = bucket
        self._access_key = access_key
        self._secret_key = secret_key
        self._secure = secure
        self._region = region
        self._client: Minio | None = None

    @classmethod
    def from_url(cls, url: str) -> S3ObjectStore:
        parts = urlsplit(url)
        bucket = parts.path.strip("/")
        if parts.scheme != "s3" or not parts.hostname or not bucket or "/" in bucket:
            raise InvalidInput("S3ObjectStore needs s3://access:secret@host:port/bucket", url=url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        endpoint = parts.hostname + (f":{parts.port}" if parts.port else "")
        return cls(endpoint, access_key=unquote(parts.username or ""), secret_key=unquote(parts.password or ""),
                   bucket=bucket, secure=query.get("secure", "false").lower() in ("1", "true", "yes"),
                   region=query.get("region", "us-east-1"))

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        if self._client is not None:
            return
        # Few, quick retries: an unreachable store should surface as BackendUnavailable soon.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=60), maxsize=16,
            retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        )
        client = Minio(self.endpoint, access_key=self._access_key, secret_key=self._secret_key,
                       secure=self._secure, region=self._region, http_client=http)
        await self._call("create bucket", self._ensure_bucket, client)
        self._client = client

    def _ensure_bucket(self, client: Minio) -> None:
        if not client.bucket_exists(self.bucket):
            try:
                client.make_bucket(self.bucket)
            except S3Error as exc:
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client._http.clear()  # noqa: SLF001 - the client has no close(); drop its pooled sockets

    def _live(self) -> Minio:
        if self._client is None:
            raise BackendUnavailable("the object store is not started or already closed")
        return self._client

    async def _call(self, what: str, fn, *args, key: str | None = None):
        """Run a blocking minio call in a thread; its exceptions leave as Flare errors."""
        details = {"key": key} if key is not None else {}
        try:
            return await asyncio.to_thread(fn, *args)
        except FlareError:
            raise
        except S3Error as exc:
            if exc.code in _NOT_FOUND:
                raise NotFound(f"{what}: no object {key!r}" if key else f"{what}: {exc.code}", **details) from exc
            raise BackendError(f"{what}: {exc.code}: {exc.message}", **details) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise BackendUnavailable(f"{what}: object store unavailable: {exc}", **details) from exc
        except MinioException as exc:
            raise BackendError(f"{what}: {exc}", **details) from exc

    # -- objects -----------------------------------------------------------------------------
    async def put(self, key: str, data: bytes, *, content_type: str = _DEFAULT_TYPE) -> ObjectInfo:
        _validate_key(key)
        client = self._live()
        result = await self._call(
            "put object", lambda: client.put_object(self.bucket, key, io.BytesIO(data), len(data),
                                                    content_type=content_type), key=key)
        return ObjectInfo(key=key, size=len(data), content_type=content_type, etag=_etag(result.etag))

    async def get(self, key: str) -> bytes:
        _validate_key(key)
        client = self._live()

        def read() -> bytes:
            response = client.get_object(self.bucket, key)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        return await self._call("get object", read, key=key)

    async def stat(self, key: str) -> ObjectInfo:
        _validate_key(key)
        client = self._live()
        found = await self._call("stat object", client.stat_object, self.bucket, key, key=key)
        return ObjectInfo(key=key, size=found.size, content_type=found.content_type or _DEFAULT_TYPE,
                          etag=_etag(found.etag))

    async def list(self, prefix: str = "") -> list[ObjectInfo]:
        client = self._live()

        def listing() -> list[ObjectInfo]:
            out = []
            # include_user_meta: MinIO's listing then carries each object's content type;
            # other S3 servers may not, and those objects are stat'ed one by one.
            for obj in client.list_objects(self.bucket, prefix=prefix or None, recursive=True,
                                           include_user_meta=True):
                if obj.is_dir:
                    continue
                meta = {k.lower(): v for k, v in (obj.metadata or {}).items()}
                content_type = obj.content_type or meta.get("content-type")
                if content_type is None:
                    content_type = client.stat_object(self.bucket, obj.object_name).content_type
                out.append(ObjectInfo(key=obj.object_name, size=obj.size or 0,
                                      content_type=content_type or _DEFAULT_TYPE, etag=_etag(obj.etag)))
            return sorted(out, key=lambda info: info.key)

        return await self._call("list objects", listing)

    async def delete(self, key: str) -> None:
        _validate_key(key)
        client = self._live()
        await self._call("delete object", client.remove_object, self.bucket, key, key=key)

    async def presigned_get_url(self, key: str, *, expires_s: int = 3600) -> str:
        _validate_key(key)
        client = self._live()
        return await self._call("presign", client.presigned_get_object, self.bucket, key,
                                timedelta(seconds=expires_s), key=key)
