"""`file:///abs/dir` — the ObjectStore port on a local directory.

    objects/<key>   the bytes; a '/' in the key is a subdirectory
    meta/<key>      JSON sidecar: content type, md5 etag, and the size and mtime of the
                    data file it describes
    tmp/            staging for atomic writes (same filesystem, so rename is atomic)

Data and sidecar are two renames, so a crash can leave them from different puts; the
sidecar's size/mtime then disagree with the data file and `stat` recomputes the etag
instead of reporting a wrong one. Unlike S3, a key cannot also be a "directory" of other
keys ("a" and "a/b"); such a put is a Conflict.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
from pathlib import Path
from urllib.parse import quote, urlsplit

from services.backends.objectstore import ObjectInfo
from services.common.errors import BackendError, BackendUnavailable, Conflict, FlareError, InvalidInput, NotFound
from services.common.paths import ensure_private_dir

__all__ = ["DirectoryObjectStore"]

_DEFAULT_TYPE = "application/octet-stream"
_MAX_KEY = 1024


def _validate_key(key: str) -> list[str]:
    if not isinstance(key, str) or not key or len(key) > _MAX_KEY:
        raise InvalidInput(f"object keys are 1..{_MAX_KEY} characters", key=key)
    if key.startswith("/") or "\\" in key or not key.isprintable():
        raise InvalidInput("object keys are relative, printable, and use '/' as separator", key=key)
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise InvalidInput("object keys may not contain empty, '.' or '..' segments", key=key)
    return parts


class DirectoryObjectStore:
    def __init__(self, root: str | Path) -> None:
        self._root = Path(root)
        self._objects = self._root / "objects"
        self._meta = self._root / "meta"
        self._tmp = self._root / "tmp"
        self._started = False

    @classmethod
    def from_url(cls, url: str) -> DirectoryObjectStore:
        parts = urlsplit(url)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise InvalidInput("DirectoryObjectStore needs file:///absolute/dir", url=url)
        return cls(parts.path)

    async def start(self) -> None:
        if self._started:
            return
        await self._io(self._start_sync, "start")
        self._started = True

    def _start_sync(self) -> None:
        for directory in (self._objects, self._meta, self._tmp):
            ensure_private_dir(directory)  # objects are staged by mkstemp, so they are 0600 too
        for stale in self._tmp.iterdir():  # staging files of a crashed put
            stale.unlink(missing_ok=True)

    async def close(self) -> None:
        self._started = False

    async def _io(self, fn, what: str, *args):
        try:
            return await asyncio.to_thread(fn, *args)
        except FlareError:
            raise
        except (NotADirectoryError, IsADirectoryError, FileExistsError) as exc:
            raise Conflict(f"{what}: a key cannot also be a prefix directory of other keys", key=args[0] if args else None) from exc
        except OSError as exc:
            raise BackendUnavailable(f"object store {what} failed: {exc}") from exc
        except ValueError as exc:
            raise BackendError(f"object store {what}: {exc}") from exc

    def _check_started(self) -> None:
        if not self._started:
            raise BackendUnavailable("object store is not started or already closed")

    # -- writes ------------------------------------------------------------------------
    async def put(self, key: str, data: bytes, *, content_type: str = _DEFAULT_TYPE) -> ObjectInfo:
        self._check_started()
        parts = _validate_key(key)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidInput("object data is bytes")
        return await self._io(self._put_sync, "put", key, parts, bytes(data), content_type)

    def _stage(self, payload: bytes) -> Path:
        fd, name = tempfile.mkstemp(dir=self._tmp)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        return Path(name)

    def _put_sync(self, key: str, parts: list[str], data: bytes, content_type: str) -> ObjectInfo:
        etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
        data_path = self._objects.joinpath(*parts)
        meta_path = self._meta.joinpath(*parts)
        ensure_private_dir(data_path.parent)
        ensure_private_dir(meta_path.parent)
        if data_path.is_dir():
            raise FileExistsError(str(data_path))
        staged = self._stage(data)
        stat = staged.stat()
        sidecar = {"content_type": content_type, "etag": etag, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        staged_meta = self._stage(json.dumps(sidecar).encode())
        try:
            os.replace(staged, data_path)  # rename keeps the mtime the sidecar recorded
            os.replace(staged_meta, meta_path)
        finally:
            staged.unlink(missing_ok=True)
            staged_meta.unlink(missing_ok=True)
        for directory in {data_path.parent, meta_path.parent}:
            fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return ObjectInfo(key, len(data), content_type, etag)

    async def delete(self, key: str) -> None:
        self._check_started()
        parts = _validate_key(key)
        await self._io(self._delete_sync, "delete", key, parts)

    def _delete_sync(self, key: str, parts: list[str]) -> None:
        for root in (self._objects, self._meta):
            path = root.joinpath(*parts)
            if path.is_dir():
                continue  # a prefix, not an object: nothing to delete (S3 says the same)
            path.unlink(missing_ok=True)
            # Prune empty parents so a later put of this prefix as a key is possible.
            parent = path.parent
            while parent != root:
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent

    # -- reads -------------------------------------------------------------------------
    async def get(self, key: str) -> bytes:
        self._check_started()
        parts = _validate_key(key)
        return await self._io(self._get_sync, "get", key, parts)

    def _get_sync(self, key: str, parts: list[str]) -> bytes:
        try:
            return self._objects.joinpath(*parts).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise NotFound(f"no object {key!r}", key=key) from exc

    async def stat(self, key: str) -> ObjectInfo:
        self._check_started()
        parts = _validate_key(key)
        return await self._io(self._stat_sync, "stat", key, parts)

    def _stat_sync(self, key: str, parts: list[str]) -> ObjectInfo:
        data_path = self._objects.joinpath(*parts)
        try:
            stat = data_path.stat()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFound(f"no object {key!r}", key=key) from exc
        if not data_path.is_file():
            raise NotFound(f"no object {key!r}", key=key)
        try:
            sidecar = json.loads(self._meta.joinpath(*parts).read_text())
        except (OSError, ValueError):
            sidecar = {}
        if sidecar.get("size") == stat.st_size and sidecar.get("mtime_ns") == stat.st_mtime_ns:
            return ObjectInfo(key, stat.st_size, sidecar["content_type"], sidecar["etag"])
        # Sidecar from another put (crash between the two renames) or missing: trust the data.
        etag = hashlib.md5(data_path.read_bytes(), usedforsecurity=False).hexdigest()
        return ObjectInfo(key, stat.st_size, sidecar.get("content_type", _DEFAULT_TYPE), etag)

    async def list(self, prefix: str = "") -> list[ObjectInfo]:
        self._check_started()
        return await self._io(self._list_sync, "list", prefix)

    def _list_sync(self, prefix: str) -> list[ObjectInfo]:
        # Walk only the deepest directory the prefix pins down, not the whole tree.
        directory = prefix.rpartition("/")[0]
        if directory and any(part in ("", ".", "..") for part in directory.split("/")):
            return []
        start = self._objects.joinpath(*directory.split("/")) if directory else self._objects
        keys = []
        for dirpath, _, filenames in os.walk(start):
            relative = Path(dirpath).relative_to(self._objects).as_posix()
            base = "" if relative == "." else relative + "/"
            keys.extend(base + name for name in filenames if (base + name).startswith(prefix))
        out = []
        for key in sorted(keys):
            try:
                out.append(self._stat_sync(key, key.split("/")))
            except NotFound:
                continue  # deleted while we listed
        return out

    async def presigned_get_url(self, key: str, *, expires_s: int = 3600) -> str:
        # A local file needs no signature; the URL is only as private as the directory.
        self._check_started()
        parts = _validate_key(key)
        return "file://" + quote(str(self._objects.joinpath(*parts).resolve()))
