"""The playbook engine against a small Typer app whose commands keep their state in a file.

The app stands in for flarectl's command tree (the engine takes any root command); its
commands are named like flarectl's read-only ones where a check needs one, and they really
change and read a state file, so every assertion is about what ran and in which order.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer

from flarectl.exitcodes import ExitCode
from flarectl.playbook import Engine, RunStore, parse_playbook
from services.common.errors import Conflict, InvalidInput


def make_app(state: Path) -> typer.Typer:
    app = typer.Typer()
    config = typer.Typer()
    app.add_typer(config, name="config")

    def read() -> dict:
        return json.loads(state.read_text()) if state.exists() else {"version": 0, "log": [], "acked": True}

    def write(data: dict) -> None:
        state.write_text(json.dumps(data))

    @config.command("apply")
    def apply(file: str = typer.Option(..., "-f"), dry_run: bool = typer.Option(False, "--dry-run")) -> None:
        data = read()
        if dry_run:
            print(f"would apply {file}")
            return
        data["version"] += 1
        data["log"].append(f"apply {file}")
        data["acked"] = file != "nacked.yaml"
        write(data)

    @config.command("rollback")
    def rollback(to: int = typer.Option(..., "--to")) -> None:
        data = read()
        data["log"].append(f"rollback to {to}")
        data["version"] += 1
        data["acked"] = True
        write(data)

    @config.command("get")
    def get(output: str = typer.Option("json", "-o")) -> None:
        print(json.dumps(read()))

    @app.command("status")
    def status(output: str = typer.Option("json", "-o")) -> None:
        data = read()
        data["polls"] = data.get("polls", 0) + 1
        write(data)
        print(json.dumps({"acked": data["acked"], "polls": data["polls"], "version": data["version"]}))

    @app.command("boom")
    def boom() -> None:
        raise typer.Exit(4)

    return app


BOOK = """
name: demo
vars:
  file: {default: good.yaml, description: the document}
steps:
  - name: current
    run: config get -o json
    read_only: true
    capture: {previous: version}
  - name: apply
    run: config apply -f {{ file }}
    dry_run: config apply -f {{ file }} --dry-run
    rollback: config rollback --to {{ previous }}
  - name: acked
    check:
      run: status -o json
      until: acked
      fail_when: "!acked"
      retries: 2
      delay: 10ms
  - name: gate
    approve: go on with {{ file }}?
  - name: settle
    wait: 10ms
"""


@pytest.fixture
def env(tmp_path):
    state = tmp_path / "state.json"
    root = typer.main.get_command(make_app(state))
    store = RunStore(tmp_path / "data")
    lines: list[str] = []

    def engine(text: str = BOOK, *, yes: bool = True, dry_run: bool = False, confirm=None) -> Engine:
        return Engine(playbook=parse_playbook(text), source="demo.yaml", source_text=text, root=root, store=store,
                      who="alice", yes=yes, dry_run=dry_run, confirm=confirm, report=lines.append,
                      sleep=lambda s: None)

    def log() -> list[str]:
        return json.loads(state.read_text())["log"] if state.exists() else []

    return engine, log, store, lines


def test_a_green_run_records_every_step_in_the_audit_log(env):
    engine, log, store, _ = env
    e = engine()
    assert e.start({}) is ExitCode.OK
    assert log() == ["apply good.yaml"]
    assert e.run["captured"] == {"previous": "0"}
    assert [s["state"] for s in e.run["steps"]] == ["done"] * 5
    events = [(x["step"], x["result"]) for x in store.events()]
    assert events[0] == ("run", "started") and events[-1] == ("run", "done")
    assert ("gate", "done") in events and ("apply", "done") in events
    assert all(x["who"] == "alice" and x["run_id"] == e.run["run_id"] for x in store.events())
    digests = [x["output_digest"] for x in store.events() if x["step"] == "acked" and x["result"] == "done"]
    assert digests[0].startswith("sha256:") and len(digests[0]) == 71


def test_a_failing_check_rolls_back_the_completed_steps(env):
    engine, log, store, lines = env
    e = engine()
    assert e.start({"file": "nacked.yaml"}) is ExitCode.FAILURE
    assert log() == ["apply nacked.yaml", "rollback to 0"]
    assert e.run["status"] == "rolled-back"
    assert [s["state"] for s in e.run["steps"]] == ["done", "rolled-back", "failed", "pending", "pending"]
    assert "fail_when" in e.run["steps"][2]["result"]
    assert any("rollback apply: config rollback --to 0 -> ok" in line for line in lines)


def test_dry_run_runs_read_only_steps_and_changes_nothing(env):
    engine, log, store, _ = env
    e = engine(dry_run=True, yes=False)
    assert e.start({}) is ExitCode.OK
    assert log() == []  # config apply never ran; the check after it was not run either
    assert [s["state"] for s in e.run["steps"]] == ["done", "would", "would", "would", "would"]
    assert "config apply -f good.yaml --dry-run: ok" in e.run["steps"][1]["result"]


def test_no_terminal_and_no_yes_stops_at_the_gate_and_resume_continues(env, tmp_path):
    engine, log, store, _ = env
    first = engine(yes=False, confirm=None)
    assert first.start({}) is ExitCode.ABORTED
    assert first.run["status"] == "awaiting-approval"
    run_id = first.run["run_id"]
    assert [s["state"] for s in first.run["steps"]][3:] == ["awaiting-approval", "pending"]

    declined = engine(yes=False, confirm=lambda q: False)
    assert declined.resume(store.load(run_id)) is ExitCode.ABORTED
    assert declined.run["status"] == "declined"

    second = engine(yes=True)
    assert second.resume(store.load(run_id)) is ExitCode.OK
    assert log() == ["apply good.yaml"], "a resumed run repeated a finished step"
    assert second.run["status"] == "done"
    with pytest.raises(InvalidInput, match="dry run"):
        dry = engine(dry_run=True)
        dry.start({})
        engine().resume(store.load(dry.run["run_id"]))


def test_a_killed_run_resumes_at_the_step_that_was_running(env):
    engine, log, store, _ = env
    e = engine()
    e.start({})
    run = store.load(e.run["run_id"])
    # what a kill -9 during `acked` leaves: that step running, the ones after pending
    run["status"] = "running"
    run["steps"][2]["state"] = "running"
    for step in run["steps"][3:]:
        step["state"] = "pending"
    store.save(run)
    resumed = engine()
    assert resumed.resume(store.load(e.run["run_id"])) is ExitCode.OK
    assert log() == ["apply good.yaml"]
    assert resumed.run["steps"][2]["attempts"] == 2
    changed = BOOK.replace("10ms", "20ms")
    with pytest.raises(Conflict, match="changed since run"):
        engine(changed).resume(store.load(e.run["run_id"]))


def test_a_failing_command_stops_the_run_with_its_exit_code_in_the_result(env):
    engine, log, store, _ = env
    book = BOOK.replace("  - name: gate\n", "  - name: boom\n    run: boom\n  - name: gate\n")
    e = engine(book)
    assert e.start({}) is ExitCode.FAILURE
    assert e.run["steps"][3]["result"].startswith("boom exited 4")
    assert log() == ["apply good.yaml", "rollback to 0"]


def test_variables_are_checked(env):
    engine, *_ = env
    with pytest.raises(InvalidInput, match="--var nope: demo has no such variable"):
        engine().start({"nope": "1"})
    needs = BOOK.replace("{default: good.yaml, description: the document}", "{description: the document}")
    with pytest.raises(InvalidInput, match="--var file=…: demo needs it"):
        engine(needs).start({})


def test_schema_errors_name_line_and_field():
    bad = "name: demo\nsteps:\n  - name: a\n    check:\n      run: config apply -f x\n      until: acked\n" \
          "  - name: b\n    wait: soon\n"
    with pytest.raises(InvalidInput) as info:
        parse_playbook(bad, source="bad.yaml")
    assert str(info.value).splitlines() == [
        "bad.yaml:5: steps[0].check.run: a check runs read-only commands only; 'config apply -f x' is not one",
        "bad.yaml:8: steps[1].wait: wait: 'soon' is not a duration (e.g. 500ms, 30s, 5m)",
    ]
    unknown = "name: demo\nsteps:\n  - name: a\n    run: status {{ nope }}\n"
    with pytest.raises(InvalidInput, match=r"steps\[0\].run: \{\{ nope \}\} is neither a var"):
        parse_playbook(unknown, source="u.yaml")


LOOP = """
name: loop
vars: {names: "a,b,c"}
steps:
  - name: each
    for_each: "{{ names }}"
    steps:
      - name: apply
        run: config apply -f {{ item }}.yaml
        rollback: config rollback --to 0
      - name: acked
        check: {run: status -o json, until: "acked && version > `0`"}
"""


def test_for_each_runs_its_steps_once_per_item_and_resumes_inside_the_loop(env):
    engine, log, store, _ = env
    e = engine(LOOP)
    assert e.start({}) is ExitCode.OK
    assert log() == ["apply a.yaml", "apply b.yaml", "apply c.yaml"]
    assert [s["name"] for s in e.run["steps"]] == ["each", "apply[a]", "acked[a]", "apply[b]", "acked[b]",
                                                   "apply[c]", "acked[c]"]
    run = store.load(e.run["run_id"])
    for record in run["steps"][3:]:  # killed while apply[b] ran
        record["state"] = "pending"
    run["steps"][3]["state"], run["status"] = "running", "running"
    store.save(run)
    resumed = engine(LOOP)
    assert resumed.resume(store.load(e.run["run_id"])) is ExitCode.OK
    assert log()[3:] == ["apply b.yaml", "apply c.yaml"]


def test_a_nack_inside_the_loop_rolls_back_that_item_and_the_ones_before(env):
    engine, log, store, _ = env
    e = engine(LOOP.replace("acked && version", "acked && version").replace(
        "check: {run: status -o json, until:", "check: {run: status -o json, fail_when: '!acked', until:"))
    assert e.start({"names": "a,nacked"}) is ExitCode.FAILURE
    assert log() == ["apply a.yaml", "apply nacked.yaml", "rollback to 0", "rollback to 0"]
    assert [s["state"] for s in e.run["steps"]] == ["done", "rolled-back", "done", "rolled-back", "failed"]
