"""Where a deployment keeps its files, and with which modes: the one finder of the data dir,
`token.secret` and `admin.token`.

    data_dir/              0700  (FlareConfig.data_dir, FLARE_DATA_DIR, default ./.flare)
      token.secret         0600  signs client and operator tokens; created on first start
      admin.token          0600  a bootstrap admin token for flarectl (the k3s kubeconfig idea)
      messages.db, log/…   0600  the embedded adapters' files (they create them with `create_private`)

Modes are set on the open file descriptor before a byte is written, so a secret is never
readable by others, not even for a moment, whatever the process umask is.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from .auth import AUDIENCE_CONTROLPLANE, issue_token, verify_token
from .errors import Unauthorized

__all__ = [
    "DEFAULT_DATA_DIR", "DIR_MODE", "FILE_MODE", "TOKEN_SECRET", "ADMIN_TOKEN",
    "default_data_dir", "ensure_data_dir", "ensure_private_dir", "create_private", "write_private",
    "token_secret_path", "admin_token_path", "read_secret", "load_or_create_secret",
    "ensure_admin_token", "read_admin_token",
]

DEFAULT_DATA_DIR = Path(".flare")
DIR_MODE = 0o700
FILE_MODE = 0o600
TOKEN_SECRET = "token.secret"
ADMIN_TOKEN = "admin.token"

_ADMIN_TOKEN_TTL_S = 365 * 86400

log = logging.getLogger("flare.paths")


def default_data_dir(environ: dict[str, str] | None = None) -> Path:
    """FLARE_DATA_DIR, else ./.flare: what `flarectl up` uses when no --data-dir is given."""
    env = os.environ if environ is None else environ
    return Path(env.get("FLARE_DATA_DIR") or DEFAULT_DATA_DIR)


def ensure_private_dir(directory: Path) -> Path:
    """Create a directory (and missing parents); every one Flare creates gets 0700.

    A directory that already exists keeps its mode: it may be the operator's choice (a
    mount point, a shared temp dir), and tightening it behind their back would surprise.
    """
    directory = Path(directory)
    missing = []
    for candidate in (directory, *directory.parents):
        if candidate.is_dir():
            break
        missing.append(candidate)
    for path in reversed(missing):
        try:
            path.mkdir(mode=DIR_MODE)
        except FileExistsError:
            if not path.is_dir():
                raise
            continue  # made by a concurrent start: its creator set the mode
        os.chmod(path, DIR_MODE)  # mkdir's mode passes through the umask
    return directory


def ensure_data_dir(data_dir: Path) -> Path:
    """The deployment's data dir: created 0700, or tightened to 0700 if it exists wider.

    Unlike other directories this one is Flare's by definition (everything in it is a
    secret or a message), so a data dir an older version left 0755 is closed on start.
    """
    data_dir = ensure_private_dir(Path(data_dir))
    if stat.S_IMODE(data_dir.stat().st_mode) != DIR_MODE:
        try:
            os.chmod(data_dir, DIR_MODE)
        except PermissionError:
            log.warning("data dir %s is readable by others and not ours to chmod", data_dir)
    return data_dir


def create_private(path: Path, flags: int = os.O_WRONLY) -> int:
    """Open `path` with `flags`, creating it 0600 if it does not exist; return the fd.

    The mode is fixed on the descriptor (fchmod) before the caller writes, so a restrictive
    or a permissive umask makes no difference.
    """
    fd = os.open(path, flags | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # also tightens a file an older version left 0644
    except PermissionError:
        pass  # another user's file we may still use: not ours to change
    return fd


def write_private(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write a whole file that is 0600 from its first byte; `exclusive` fails if it exists."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # also tightens a file that existed with a wider mode
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def token_secret_path(data_dir: Path) -> Path:
    return Path(data_dir) / TOKEN_SECRET


def admin_token_path(data_dir: Path) -> Path:
    return Path(data_dir) / ADMIN_TOKEN


def read_secret(data_dir: Path, configured: str = "") -> bytes | None:
    """The token-signing secret: the configured one, else data_dir/token.secret, else None."""
    if configured:
        return configured.encode()
    try:
        return token_secret_path(data_dir).read_bytes().strip()
    except FileNotFoundError:
        return None


def load_or_create_secret(data_dir: Path, configured: str = "") -> bytes:
    """`read_secret`, creating data_dir (0700) and token.secret (0600) on first use.

    Two processes starting at once agree: the file is created exclusively, and the one
    that loses the race reads the winner's secret.
    """
    existing = read_secret(data_dir, configured)
    if existing is not None:
        return existing
    ensure_data_dir(Path(data_dir))
    secret = secrets.token_hex(32).encode()
    try:
        write_private(token_secret_path(data_dir), secret, exclusive=True)
    except FileExistsError:
        return token_secret_path(data_dir).read_bytes().strip()
    return secret


def read_admin_token(data_dir: Path) -> str | None:
    try:
        return admin_token_path(data_dir).read_text().strip() or None
    except FileNotFoundError:
        return None


def ensure_admin_token(data_dir: Path, secret: bytes) -> Path:
    """data_dir/admin.token (0600), rewritten when missing, expired, signed by another secret
    or without the `controlplane` audience. (A *revoked* one is not noticed here: delete the
    file after revoking it, and the next start writes a new one.)"""
    path = admin_token_path(data_dir)
    token = read_admin_token(data_dir)
    if token is not None:
        try:
            verify_token(secret, token, audience=AUDIENCE_CONTROLPLANE)
            return path
        except Unauthorized:
            pass  # expired, from another secret or from before audiences: replace it
    ensure_data_dir(Path(data_dir))
    write_private(path, (issue_token(secret, "bootstrap-admin", ttl_s=_ADMIN_TOKEN_TTL_S, role="admin") + "\n").encode())
    return path
