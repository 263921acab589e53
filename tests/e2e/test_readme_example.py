"""The README's example block, run line by line in order against a fresh monolith from the
directory it runs in (so `./.flare/admin.token` is how flarectl finds its token). Only the
load test is scaled down (same messages per user per second, so the spam rule's interplay
with it is the README's), pointed at this monolith's gateway, and its p99 limit lifted (no
test checks timing)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from tests.e2e.test_loadtest import ThreadedMonolith

pytestmark = pytest.mark.timeout(180)

README = Path(__file__).resolve().parents[2] / "README.md"


def example_lines() -> list[str]:
    text = README.read_text()
    start = text.index("Examples (they run in this order")
    block = text[text.index("```bash\n", start) + len("```bash\n"):]
    return block[:block.index("```\n")].splitlines()


def test_the_readme_example_runs_in_order(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with ThreadedMonolith(tmp_path / ".flare") as server:
        env = {"FLARE_CONTROLPLANE": server.monolith.controlplane_address, "FLARE_TOKEN": None,
               "FLARECTL_CONFIG": str(tmp_path / "no-contexts.yaml"), "FLARE_DATA_DIR": None}
        lines = example_lines()
        ran: list[str] = []
        i = 0
        while i < len(lines):
            line = lines[i]
            heredoc = re.fullmatch(r"cat > (\S+) <<'EOF'", line)
            if heredoc:
                end = lines.index("EOF", i)
                Path(heredoc.group(1)).write_text("\n".join(lines[i + 1:end]) + "\n")
                i = end + 1
                continue
            command = " ".join(shlex.split(line, comments=True))
            i += 1
            if not command:
                continue
            target = None
            if " > " in command:
                command, target = (part.strip() for part in command.split(" > "))
            args = command.split()
            assert args[0] == "flarectl", line
            args = args[1:]
            if args[0] == "loadtest":
                # 5 msg/s per user, as written; no test checks timing (a shared CI box is not a laptop),
                # so the p99 threshold is lifted — loss, errors and rate-limits still count
                scaled = {"--users": "20", "--rate": "100", "--duration": "2s", "--max-p99": "60s"}
                args = [scaled.get(prev, a) if prev in scaled else a for prev, a in zip([""] + args, args)]
                args += ["--gateway", server.monolith.gateway_url, "--drain-timeout", "10s"]
            result = cli(*args, env=env)
            assert result.exit_code == 0, (line, result.stdout, result.stderr)
            if target:
                Path(target).write_text(result.stdout)
            ran.append(args[0] if args[0] != "config" else f"config {args[1]}")
            if command == "flarectl config apply -f current.yaml":
                assert result.stdout == "filter-rules unchanged (v1)\n"
        assert ran.count("loadtest") == 1 and ran[-1] == "loadtest", ran
        report = json.loads(result.stdout)
        assert report["ok"], report["breached"]
        assert report["refused_by_filter"] == {"rate_limited": 0, "rejected": 0}
        assert server.monolith.controlplane.desired.served["filter-rules"].version == 3


def test_a_loadtest_over_the_spam_limit_says_the_sends_were_rate_limited(cli, tmp_path):
    with ThreadedMonolith(tmp_path / ".flare") as server:
        server.call(server.monolith.controlplane.apply_manifest(
            {"kind": "filter-rules", "spec": {"spam_rules": [{"type": "frequency", "limit": 2, "window": 60}]}}))
        result = cli("loadtest", "--gateway", server.monolith.gateway_url, "--token-secret",
                     server.monolith.token_secret.decode(), "--users", "4", "--rate", "20", "--duration", "2s",
                     "--drain-timeout", "10s", "--max-errors", "1000", "--min-rate", "0")
        assert "rate-limited sends (filter spam rule)" in result.stdout
        count = int(re.search(r"rate-limited sends \(filter spam rule\)\s*│?\s*(\d+)", result.stdout).group(1))
        assert count > 0
        assert "sends were refused as rate_limited by a filter-rules spam rule" in result.stdout
