"""services/common/paths.py: the one finder of the data dir, token.secret and admin.token."""

from __future__ import annotations

import os
import stat

from services.common import paths
from services.common.auth import issue_token, verify_token


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secret_is_created_once_0600_and_read_back(tmp_path):
    data_dir = tmp_path / "a" / "b"
    previous = os.umask(0)
    try:
        secret = paths.load_or_create_secret(data_dir)
    finally:
        os.umask(previous)
    assert len(secret) == 64 and secret == paths.token_secret_path(data_dir).read_bytes()
    assert _mode(paths.token_secret_path(data_dir)) == 0o600
    assert _mode(data_dir) == 0o700 and _mode(data_dir.parent) == 0o700  # both made here
    assert paths.load_or_create_secret(data_dir) == secret  # not replaced
    assert paths.read_secret(data_dir) == secret


def test_a_configured_secret_wins_and_writes_nothing(tmp_path):
    assert paths.load_or_create_secret(tmp_path / "d", "configured") == b"configured"
    assert not (tmp_path / "d").exists()
    assert paths.read_secret(tmp_path / "missing") is None


def test_an_existing_dir_keeps_its_mode(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    paths.ensure_private_dir(shared / "flare")
    assert _mode(shared) == 0o755 and _mode(shared / "flare") == 0o700


def test_a_data_dir_left_world_readable_is_closed_but_its_parent_is_left_alone(tmp_path):
    data_dir = tmp_path / "flare"
    data_dir.mkdir()
    os.chmod(data_dir, 0o755)
    os.chmod(tmp_path, 0o755)
    paths.load_or_create_secret(data_dir)
    assert _mode(data_dir) == 0o700 and _mode(tmp_path) == 0o755


def test_admin_token_is_kept_while_valid_and_replaced_when_signed_by_another_secret(tmp_path):
    path = paths.ensure_admin_token(tmp_path, b"one")
    first = paths.read_admin_token(tmp_path)
    assert path == tmp_path / "admin.token" and _mode(path) == 0o600
    assert verify_token(b"one", first, audience="controlplane").role == "admin"
    assert paths.ensure_admin_token(tmp_path, b"one") == path and paths.read_admin_token(tmp_path) == first
    paths.ensure_admin_token(tmp_path, b"two")
    assert verify_token(b"two", paths.read_admin_token(tmp_path), audience="controlplane").subject == "bootstrap-admin"


def test_write_private_tightens_a_file_that_was_world_readable(tmp_path):
    target = tmp_path / "token"
    target.write_text(issue_token(b"s", "u"))
    os.chmod(target, 0o644)
    paths.write_private(target, b"new")
    assert target.read_bytes() == b"new" and _mode(target) == 0o600
