"""Install the real servers' software, idempotently, from the package registries only.

* Debian packages through apt-get, only when one of their binaries is missing.
* Kafka: the broker's jars resolved by Maven from tests/infra/kafka/pom.xml.
* SeaweedFS (the S3 server): built from its Go module through a wrapper module (minutes the
  first time; the binary is cached after).

Everything lands in a cache directory that survives between runs on one machine
(FLARE_INFRA_CACHE, default ~/.cache/flare-infra); each step logs to <cache>/logs/.
"""

from __future__ import annotations

import fcntl
import glob
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "InfraError",
    "cache_dir",
    "log_dir",
    "KAFKA_VERSION",
    "SEAWEEDFS_VERSION",
    "APT_BINARIES",
    "SERVER_NEEDS",
    "find_binary",
    "postgres_bin",
    "ensure_apt",
    "ensure_kafka_libs",
    "ensure_seaweedfs",
    "ensure",
    "missing",
    "kafka_classpath",
    "seaweedfs_binary",
]

KAFKA_VERSION = "3.9.1"  # must match tests/infra/kafka/pom.xml
# SeaweedFS 4.53, pinned by pseudo-version (its module path has no /v4 suffix, so Go does not
# read the release tags as versions of it).
SEAWEEDFS_VERSION = "v0.0.0-20261109003541-7506e5f91cd6"
SEAWEEDFS_MODULE = "github.com/seaweedfs/seaweedfs"

_HERE = Path(__file__).resolve().parent


class InfraError(RuntimeError):
    """A server could not be installed or started; the message says exactly why."""


def cache_dir() -> Path:
    path = Path(os.environ.get("FLARE_INFRA_CACHE") or Path.home() / ".cache" / "flare-infra")
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_dir() -> Path:
    path = cache_dir() / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def _file_lock(name: str):
    """Serialize installers across processes (two pytest runs, `up` beside pytest)."""
    with open(cache_dir() / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _run_logged(argv: list[str], *, log: Path, env: dict[str, str] | None = None, cwd: Path | None = None,
                what: str) -> None:
    with open(log, "a") as out:
        out.write(f"\n$ {' '.join(argv)}\n")
        out.flush()
        proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              env=env, cwd=cwd)
    if proc.returncode != 0:
        raise InfraError(f"{what} failed (exit {proc.returncode}); log {log}:\n{_tail(log)}")


# -- Debian packages ------------------------------------------------------------------

def postgres_bin(name: str) -> str | None:
    """A PostgreSQL server binary (initdb, postgres …), which Debian keeps off PATH."""
    for candidate in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True):
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which(name)


def find_binary(name: str) -> str | None:
    if name in ("initdb", "postgres"):
        return postgres_bin(name)
    return shutil.which(name)


# binary -> Debian package that provides it
APT_BINARIES: dict[str, str] = {
    "etcd": "etcd-server",
    "etcdctl": "etcd-client",
    "redis-server": "redis-server",
    "redis-cli": "redis-tools",
    "initdb": "postgresql",
    "postgres": "postgresql",
    "psql": "postgresql-client",
    "pg_isready": "postgresql-client",
    "kcat": "kcat",
    "java": "default-jre-headless",
    "mvn": "maven",
}

# server kind -> binaries it needs (plus the non-apt steps named in `ensure`)
SERVER_NEEDS: dict[str, tuple[str, ...]] = {
    "etcd": ("etcd", "etcdctl"),
    "redis": ("redis-server", "redis-cli"),
    "redis-cluster": ("redis-server", "redis-cli"),
    "postgres": ("initdb", "postgres", "psql", "pg_isready"),
    "kafka": ("java", "mvn", "kcat"),
    "s3": (),
}


def ensure_apt(binaries: Iterable[str]) -> list[str]:
    """Install the packages of the missing binaries; return the packages installed."""
    with _file_lock("apt"):
        missing = sorted({APT_BINARIES[b] for b in binaries if find_binary(b) is None})
        if not missing:
            return []
        if os.geteuid() != 0:
            raise InfraError(f"missing Debian packages {missing} and not root to install them "
                             f"(sudo apt-get install {' '.join(missing)})")
        log = log_dir() / "apt.log"
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        _run_logged(["apt-get", "update", "-q"], log=log, env=env, what="apt-get update")
        _run_logged(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
                    log=log, env=env, what=f"apt-get install {' '.join(missing)}")
        still = [b for b in binaries if find_binary(b) is None]
        if still:
            raise InfraError(f"installed {missing} but still missing binaries {still}")
        return missing


# -- Kafka (jars from Maven) ----------------------------------------------------------------

def _kafka_libs_dir() -> Path:
    return cache_dir() / f"kafka-{KAFKA_VERSION}-libs"


def kafka_classpath() -> str | None:
    libs = _kafka_libs_dir()
    if not (libs / ".complete").exists():
        return None
    return os.pathsep.join(sorted(str(p) for p in libs.glob("*.jar")))


def ensure_kafka_libs() -> bool:
    """Resolve the broker's runtime classpath; True if it had to be fetched."""
    if kafka_classpath():
        return False
    ensure_apt(["java", "mvn"])
    with _file_lock("kafka"):
        if kafka_classpath():
            return False
        libs = _kafka_libs_dir()
        shutil.rmtree(libs, ignore_errors=True)
        libs.mkdir(parents=True)
        _run_logged(
            ["mvn", "-q", "-B", "-f", str(_HERE / "kafka" / "pom.xml"), "dependency:copy-dependencies",
             "-DincludeScope=runtime", f"-DoutputDirectory={libs}"],
            log=log_dir() / "kafka-mvn.log", what=f"mvn resolve of kafka_2.13 {KAFKA_VERSION}",
        )
        if not list(libs.glob("kafka_2.13-*.jar")):
            raise InfraError(f"mvn finished but no kafka_2.13 jar in {libs}")
        (libs / ".complete").write_text(KAFKA_VERSION)
        return True


# -- SeaweedFS (S3 server, built from its Go module) -----------------------------------------

def seaweedfs_binary() -> str | None:
    path = cache_dir() / "bin" / "weed"
    stamp = cache_dir() / "bin" / "weed.version"
    if path.exists() and stamp.exists() and stamp.read_text().strip() == SEAWEEDFS_VERSION:
        return str(path)
    return None


def _go() -> str | None:
    return shutil.which("go") or ("/usr/local/go/bin/go" if os.access("/usr/local/go/bin/go", os.X_OK) else None)


# `go install module@version` refuses a module whose go.mod has a replace directive, and
# SeaweedFS's has one; so a tiny wrapper module requires it, repeats that replace line, and
# pins the dependency through a tools.go import.
_SEAWEEDFS_GO_MOD = f"""module flare.test/seaweedfs-build

go 1.24

require {SEAWEEDFS_MODULE} {SEAWEEDFS_VERSION}

replace github.com/tyler-smith/go-bip39 => github.com/cosmos/go-bip39 v1.0.0
"""

_SEAWEEDFS_TOOLS_GO = f"""//go:build tools

// Package tools pins the SeaweedFS server module so `go mod tidy` keeps it.
package tools

import _ "{SEAWEEDFS_MODULE}/weed"
"""


def ensure_seaweedfs() -> bool:
    """Build the SeaweedFS server (`weed`) from its Go module (niced: it is heavy); True if it built."""
    if seaweedfs_binary():
        return False
    go = _go()
    if go is None:
        raise InfraError("SeaweedFS is built from source and needs the go toolchain (>= 1.24), which is not installed")
    with _file_lock("seaweedfs"):
        if seaweedfs_binary():
            return False
        cache = cache_dir()
        work = cache / f"seaweedfs-build-{SEAWEEDFS_VERSION}"
        work.mkdir(parents=True, exist_ok=True)
        (work / "go.mod").write_text(_SEAWEEDFS_GO_MOD)
        (work / "tools.go").write_text(_SEAWEEDFS_TOOLS_GO)
        env = {
            **os.environ,
            "GOPATH": str(cache / "go"),
            "GOCACHE": str(cache / "go-build"),
            "GOFLAGS": "-mod=mod -buildvcs=false",
            "GOTOOLCHAIN": "local",
            "CGO_ENABLED": "0",
        }
        log = log_dir() / "seaweedfs-build.log"
        _run_logged(["nice", "-n", "19", go, "mod", "tidy"], log=log, env=env, cwd=work,
                    what=f"go mod tidy for {SEAWEEDFS_MODULE}@{SEAWEEDFS_VERSION}")
        (cache / "bin").mkdir(parents=True, exist_ok=True)
        built = cache / "bin" / "weed.partial"
        _run_logged(["nice", "-n", "19", go, "build", "-o", str(built), f"{SEAWEEDFS_MODULE}/weed"],
                    log=log, env=env, cwd=work, what=f"go build {SEAWEEDFS_MODULE}/weed@{SEAWEEDFS_VERSION}")
        built.replace(cache / "bin" / "weed")
        (cache / "bin" / "weed.version").write_text(SEAWEEDFS_VERSION)
        return True


# -- what is installed ---------------------------------------------------------------------------

def missing(kind: str) -> list[str]:
    """What a server kind still needs before it can start ([] when it is installed).

    Only looks (PATH, the cache): it never installs, so fixtures can call it at any time.
    """
    if kind not in SERVER_NEEDS:
        raise InfraError(f"unknown server kind {kind!r} (known: {', '.join(SERVER_NEEDS)})")
    lacking = [b for b in SERVER_NEEDS[kind] if find_binary(b) is None]
    if kind == "kafka" and kafka_classpath() is None:
        lacking.append(f"kafka {KAFKA_VERSION} jars")
    if kind == "s3" and seaweedfs_binary() is None:
        lacking.append(f"SeaweedFS weed {SEAWEEDFS_VERSION}")
    return lacking


# -- everything ---------------------------------------------------------------------------------

def ensure(kinds: Iterable[str], *, log=print) -> dict[str, float]:
    """Install what the given server kinds need, in parallel; return seconds per step.

    The SeaweedFS build and the Maven resolve run in threads beside apt-get. Raises InfraError
    naming every step that failed.
    """
    kinds = list(kinds)
    timings: dict[str, float] = {}
    errors: dict[str, str] = {}

    def step(name: str, func) -> None:
        started = time.monotonic()
        try:
            func()
        except Exception as exc:  # noqa: BLE001 - reported below with the step's name
            errors[name] = str(exc)
        finally:
            timings[name] = round(time.monotonic() - started, 1)

    threads = []
    if "s3" in kinds:
        threads.append(threading.Thread(target=step, args=("seaweedfs", ensure_seaweedfs), daemon=True))
    if "kafka" in kinds:
        threads.append(threading.Thread(target=step, args=("kafka-libs", ensure_kafka_libs), daemon=True))
    for thread in threads:
        thread.start()
    binaries = sorted({b for kind in kinds for b in SERVER_NEEDS.get(kind, ())})
    step("apt", lambda: ensure_apt(binaries))
    for thread in threads:
        thread.join()
    for name, seconds in timings.items():
        log(f"install {name}: {'FAILED' if name in errors else 'ok'} in {seconds}s")
    if errors:
        raise InfraError("; ".join(f"{name}: {reason}" for name, reason in errors.items()))
    return timings
