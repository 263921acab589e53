"""Contract for the ObjectStore port (services/backends/objectstore.py), run against every adapter.

Keys live under a random prefix so the suite can share one real bucket.
"""

from __future__ import annotations

import hashlib

import pytest

from services.backends.objectstore import ObjectInfo, ObjectStore
from services.common.errors import InvalidInput, NotFound


async def test_is_an_objectstore(objectstore):
    assert isinstance(objectstore, ObjectStore)


async def test_round_trip(objectstore, unique):
    key = f"{unique}/media/2024/pic.jpg"
    data = bytes(range(256)) * 100
    info = await objectstore.put(key, data, content_type="image/jpeg")
    assert info == ObjectInfo(key, len(data), "image/jpeg", hashlib.md5(data).hexdigest())
    assert await objectstore.get(key) == data
    assert await objectstore.stat(key) == info


async def test_overwrite_and_default_content_type(objectstore, unique):
    key = f"{unique}/blob"
    await objectstore.put(key, b"one", content_type="text/plain")
    info = await objectstore.put(key, b"two!")
    assert await objectstore.get(key) == b"two!"
    assert (await objectstore.stat(key)) == info
    assert info.content_type == "application/octet-stream"
    assert info.size == 4


async def test_empty_object(objectstore, unique):
    key = f"{unique}/empty"
    await objectstore.put(key, b"")
    assert await objectstore.get(key) == b""
    assert (await objectstore.stat(key)).size == 0


async def test_not_found(objectstore, unique):
    with pytest.raises(NotFound):
        await objectstore.get(f"{unique}/missing")
    with pytest.raises(NotFound):
        await objectstore.stat(f"{unique}/missing")
    await objectstore.put(f"{unique}/dir/file", b"x")
    with pytest.raises(NotFound):
        await objectstore.get(f"{unique}/dir")  # a prefix is not an object
    with pytest.raises(NotFound):
        await objectstore.get(f"{unique}/dir/file/deeper")


async def test_list_by_prefix(objectstore, unique):
    keys = [f"{unique}/a/1", f"{unique}/a/2", f"{unique}/ab", f"{unique}/b/c/d", f"{unique}/a/10"]
    for key in keys:
        await objectstore.put(key, key.encode())
    listed = await objectstore.list(f"{unique}/")
    assert [info.key for info in listed] == sorted(keys)
    assert all(info.size == len(info.key) for info in listed)
    assert [i.key for i in await objectstore.list(f"{unique}/a")] == sorted(
        [f"{unique}/a/1", f"{unique}/a/10", f"{unique}/a/2", f"{unique}/ab"]
    )
    assert [i.key for i in await objectstore.list(f"{unique}/a/")] == [f"{unique}/a/1", f"{unique}/a/10", f"{unique}/a/2"]
    assert [i.key for i in await objectstore.list(f"{unique}/a/1")] == [f"{unique}/a/1", f"{unique}/a/10"]
    assert await objectstore.list(f"{unique}/zzz") == []
    assert await objectstore.list(f"{unique}/nope/deeper/") == []


async def test_delete_is_idempotent(objectstore, unique):
    key = f"{unique}/x/y/z"
    await objectstore.put(key, b"data")
    await objectstore.delete(key)
    await objectstore.delete(key)
    with pytest.raises(NotFound):
        await objectstore.get(key)
    assert await objectstore.list(f"{unique}/") == []
    # The emptied prefix can now hold an object of its own.
    await objectstore.put(f"{unique}/x/y", b"now a key")
    assert await objectstore.get(f"{unique}/x/y") == b"now a key"


@pytest.mark.parametrize("bad", ["", "../escape", "a/../../etc/passwd", "/abs/path", "a//b", "a/./b", "a/..", "trailing/"])
async def test_bad_keys(objectstore, bad):
    with pytest.raises(InvalidInput):
        await objectstore.put(bad, b"x")
    with pytest.raises(InvalidInput):
        await objectstore.get(bad)


async def test_presigned_url(objectstore, unique):
    key = f"{unique}/share/me.txt"
    await objectstore.put(key, b"shared", content_type="text/plain")
    url = await objectstore.presigned_get_url(key, expires_s=60)
    assert isinstance(url, str) and "://" in url
    if url.startswith("file://"):
        from urllib.parse import unquote, urlsplit

        with open(unquote(urlsplit(url).path), "rb") as handle:
            assert handle.read() == b"shared"
    else:  # an S3 URL: any plain HTTP client may fetch it, no credentials of its own
        import asyncio
        import urllib.request

        def fetch() -> bytes:
            with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback test server
                return response.read()

        assert await asyncio.to_thread(fetch) == b"shared"


async def test_survives_reopen(objectstore_opener, unique):
    store = objectstore_opener()
    await store.start()
    info = await store.put(f"{unique}/keep", b"kept", content_type="text/plain")
    await store.close()
    again = objectstore_opener()
    await again.start()
    await again.start()
    assert await again.get(f"{unique}/keep") == b"kept"
    assert await again.stat(f"{unique}/keep") == info
    await again.close()
    await again.close()


async def test_directory_store_escape_stays_inside(tmp_path):
    from services.backends.embedded.dirstore import DirectoryObjectStore

    store = DirectoryObjectStore.from_url(f"file://{tmp_path}/store")
    await store.start()
    with pytest.raises(InvalidInput):
        await store.put("../../outside", b"x")
    assert not (tmp_path / "outside").exists()
    with pytest.raises(InvalidInput):
        DirectoryObjectStore.from_url("file://relative")
    await store.close()
