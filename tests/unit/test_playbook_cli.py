"""`flarectl playbook list / show / validate` and the shipped playbooks' schema."""

from __future__ import annotations

import json

SHIPPED = ["archive-cold-data", "migrate-with-checks", "replay-after-outage", "rolling-restart", "rotate-filter-rules"]


def test_every_shipped_playbook_is_listed_and_valid(cli, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # only the shipped folder, not a ./playbooks of the caller
    result = cli("playbook", "list", "-o", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == SHIPPED
    assert all(r["valid"] and r["steps"] >= 4 and r["description"] for r in rows)


def test_show_lists_steps_with_their_rollbacks(cli):
    result = cli("playbook", "show", "rotate-filter-rules", "-o", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert [s["name"] for s in data["steps"]] == [
        "current", "synced-before", "diff", "approve-canary", "canary", "canary-acked", "canary-healthy",
        "approve-all", "apply", "every-ack"]
    assert {s["name"]: s["rollback"] for s in data["steps"] if s["rollback"]} == {
        "canary": "config canary --end", "apply": "config rollback filter-rules --to {{ previous }} --yes"}
    assert set(data["vars"]) == {"file", "canary_instance"}
    table = cli("playbook", "show", "rolling-restart")
    assert "for each of {{ targets }}: before (run), restart (run), healthy-and-synced (check)" in table.stdout


def test_validate_names_line_and_field(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsteps:\n  - name: go\n    run: config apply -f x.yaml\n    read_only: true\n"
                   "  - name: go\n    wait: 1s\n")
    result = cli("playbook", "validate", str(bad))
    assert result.exit_code == 3
    assert f"{bad}:3: steps[0]: read_only: 'config apply -f x.yaml' is not a read-only command" in \
        " ".join(result.stderr.split())
    good = cli("playbook", "validate", "rolling-restart")
    assert good.exit_code == 0 and good.stdout.strip().endswith("valid, 4 steps")
    missing = cli("playbook", "show", "nope")
    assert missing.exit_code == 7 and "no playbook named 'nope'" in missing.stderr
