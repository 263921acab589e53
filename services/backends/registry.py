"""Pick an adapter by URL scheme (ARCHITECTURE §4).

Adapters are imported lazily so the embedded default never imports a production driver
it does not use. A production adapter registers here under its scheme.
"""

from __future__ import annotations

import importlib
from urllib.parse import urlsplit

from services.common.errors import InvalidInput

from .cache import Cache
from .configstore import ConfigStore
from .log import Log
from .messagedb import MessageDB
from .objectstore import ObjectStore

__all__ = ["open_log", "open_cache", "open_messagedb", "open_objectstore", "open_configstore", "ADAPTERS"]

# port -> scheme -> "module:factory"; each factory takes the URL string.
ADAPTERS: dict[str, dict[str, str]] = {
    "log": {
        "file": "services.backends.embedded.filelog:FileLog.from_url",
        "kafka": "services.backends.kafka.log:KafkaLog.from_url",
    },
    "cache": {
        "memory": "services.backends.embedded.memcache:MemoryCache.from_url",
        "redis": "services.backends.redis.cache:RedisCache.from_url",
        "redis+cluster": "services.backends.redis.cache:RedisCache.from_url",
    },
    "messagedb": {
        "sqlite": "services.backends.messagedb.sqlite.adapter:SQLiteMessageDB.from_url",
        "postgresql": "services.backends.messagedb.postgres.adapter:PostgresMessageDB.from_url",
        "postgres": "services.backends.messagedb.postgres.adapter:PostgresMessageDB.from_url",
    },
    "objectstore": {
        "file": "services.backends.embedded.dirstore:DirectoryObjectStore.from_url",
        "s3": "services.backends.s3.objectstore:S3ObjectStore.from_url",
    },
    "configstore": {
        "sqlite": "services.backends.embedded.sqliteconfig:SQLiteConfigStore.from_url",
        "etcd": "services.backends.etcd.configstore:EtcdConfigStore.from_url",
    },
}


def _open(port: str, url: str):
    scheme = urlsplit(url).scheme
    target = ADAPTERS[port].get(scheme)
    if target is None:
        known = ", ".join(f"{s}://" for s in sorted(ADAPTERS[port]))
        raise InvalidInput(f"no {port} adapter for URL scheme {scheme!r} (known: {known})", url=url)
    module_name, _, attr = target.partition(":")
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj(url)


def open_log(url: str) -> Log:
    return _open("log", url)


def open_cache(url: str) -> Cache:
    return _open("cache", url)


def open_messagedb(url: str) -> MessageDB:
    return _open("messagedb", url)


def open_objectstore(url: str) -> ObjectStore:
    return _open("objectstore", url)


def open_configstore(url: str) -> ConfigStore:
    return _open("configstore", url)
