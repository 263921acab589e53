"""Run a playbook: steps in order, checks with retries, approval gates, rollback in reverse.

Every step transition is saved in the run file before the next step starts and appended
to the audit log, so a kill at any point leaves a run --resume can continue: the step that
was running is run again (playbook steps are written to be safe to repeat: `config apply`
of the same document is "unchanged", `replay` is idempotent, `migrate up` skips what is
applied). A failed step runs the rollbacks of the completed steps, newest first.

--dry-run runs read-only steps and every check up to the first step that would change
something, runs a step's `dry_run` command instead of the step, and prints the rest.
"""

from __future__ import annotations

import secrets
import shlex
import sys
import time
from collections.abc import Callable

import jmespath
import orjson

from flarectl.exitcodes import ExitCode
from services.common.errors import Conflict, InvalidInput

from .invoke import Outcome, invoke
from .records import RunStore, digest, utc_now
from .schema import VAR_PATTERN, Playbook, Step

__all__ = ["Engine", "new_run_id"]

Report = Callable[[str], None]
Confirm = Callable[[str], bool]

_RESUMABLE = {"running", "interrupted", "awaiting-approval", "declined"}


def new_run_id() -> str:
    return time.strftime("pb-%Y%m%dT%H%M%SZ-", time.gmtime()) + secrets.token_hex(3)


def _truthy(value: object) -> bool:
    """JMESPath's truth: false, null, "", [] and {} are false; 0 is true."""
    return not (value is None or value is False or value in ("", [], {}))


def _record(step: Step, ref: list[int], *, item: str | None = None) -> dict:
    return {"name": step.name if item is None else f"{step.name}[{item}]", "ref": ref, "item": item,
            "kind": step.kind, "state": "pending", "attempts": 0, "result": "", "output_digest": None,
            "finished_at": None}


class _Missing(KeyError):
    pass


def render(text: str, values: dict[str, str]) -> str:
    def one(match) -> str:
        name = match.group(1)
        if name not in values:
            raise _Missing(name)
        return values[name]
    return VAR_PATTERN.sub(one, text)


def _argv(spec: str | list[str], values: dict[str, str]) -> list[str]:
    """A value is one argument whatever it holds (quoted before the string is split)."""
    if isinstance(spec, str):
        parts = shlex.split(render(spec, {k: shlex.quote(v) for k, v in values.items()}))
    else:
        parts = [render(p, values) for p in spec]
    return parts[1:] if parts and parts[0] == "flarectl" else parts


def _invoke(root: object, argv: list[str]) -> Outcome:
    outcome = invoke(root, argv)
    if outcome.code == ExitCode.INTERRUPTED:
        raise KeyboardInterrupt
    return outcome


def _short(outcome: Outcome, limit: int = 300) -> str:
    text = (outcome.stderr.strip() or outcome.stdout.strip()).replace("\n", " | ")
    return text if len(text) <= limit else text[:limit] + "…"


class Engine:
    def __init__(self, *, playbook: Playbook, source: str, source_text: str, root: object, store: RunStore,
                 who: str, yes: bool, dry_run: bool, confirm: Confirm | None, report: Report,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.playbook = playbook
        self.source = source
        self.digest = digest(source_text)
        self._root = root
        self._store = store
        self._who = who
        self._yes = yes
        self._dry_run = dry_run
        self._confirm = confirm  # None: no terminal to ask on
        self._report = report
        self._sleep = sleep
        self.run: dict = {}

    # -- entry points -------------------------------------------------------------------
    def start(self, given: dict[str, str]) -> ExitCode:
        values: dict[str, str] = {}
        unknown = sorted(set(given) - set(self.playbook.vars))
        if unknown:
            raise InvalidInput(f"--var {unknown[0]}: {self.playbook.name} has no such variable "
                               f"(it has: {', '.join(self.playbook.vars) or 'none'})", field="var")
        for name, var in self.playbook.vars.items():
            value = given.get(name, var.default)
            if value is None:
                raise InvalidInput(f"--var {name}=…: {self.playbook.name} needs it ({var.description or 'no default'})",
                                   field="var")
            values[name] = value
        run_id = new_run_id()
        self.run = {
            "run_id": run_id, "playbook": self.playbook.name, "source": self.source, "digest": self.digest,
            "who": self._who, "started_at": utc_now(), "dry_run": self._dry_run, "status": "running",
            "vars": values, "captured": {},
            "steps": [_record(s, [i]) for i, s in enumerate(self.playbook.steps)],
            "rollbacks": [],
        }
        self._save()
        self._audit("run", "started", detail={"vars": values, "dry_run": self._dry_run})
        return self._go()

    def resume(self, run: dict) -> ExitCode:
        if run.get("dry_run"):
            raise InvalidInput(f"{run['run_id']} was a dry run; start a real one")
        if run["digest"] != self.digest:
            raise Conflict(f"{self.source} changed since run {run['run_id']} started; start a new run")
        if run["status"] == "done":
            self.run = run
            self._report(f"run {run['run_id']} is already done")
            return ExitCode.OK
        if run["status"] not in _RESUMABLE:
            raise Conflict(f"run {run['run_id']} is {run['status']}; start a new run")
        self.run = run
        self.run["status"] = "running"
        self._save()
        self._audit("run", "resumed")
        return self._go()

    # -- the loop -----------------------------------------------------------------------
    def _values(self, record: dict | None = None) -> dict[str, str]:
        values = {**self.run["vars"], **self.run["captured"], "run_id": self.run["run_id"]}
        if record is not None and record.get("item") is not None:
            values["item"] = record["item"]
        return values

    def _step_of(self, record: dict) -> Step:
        ref = record["ref"]
        step = self.playbook.steps[ref[0]]
        return step if len(ref) == 1 else step.steps[ref[1]]  # type: ignore[index]

    def _go(self) -> ExitCode:
        records = self.run["steps"]  # grows when a for_each step expands
        changed = False  # dry run: a step that would change something has been passed
        index = -1
        while index + 1 < len(records):
            index += 1
            record = records[index]
            step = self._step_of(record)
            if record["state"] in ("done", "would"):
                changed = changed or (record["state"] == "would" and step.kind == "run" and not step.read_only)
                continue
            record["state"], record["attempts"] = "running", record["attempts"] + 1
            self._save()
            self._audit(record["name"], "started")
            label = f"[{index + 1}/{len(records)}] {record['name']}"
            try:
                if step.kind == "for_each":
                    state, result, outcome = self._expand(step, record, index)
                else:
                    state, result, outcome = self._step(step, record, changed)
            except KeyboardInterrupt:
                self.run["status"] = "interrupted"
                self._save()
                self._audit(record["name"], "interrupted")
                raise
            record.update(state=state, result=result, finished_at=utc_now(),
                          output_digest=None if outcome is None else digest(outcome.stdout + outcome.stderr))
            self._save()
            self._audit(record["name"], state, outcome=outcome, detail={"detail": result})
            self._report(f"{label}: {state} — {result}" if result else f"{label}: {state}")
            if state == "would":
                changed = changed or step.kind == "run" and not step.read_only
                continue
            if state == "done":
                continue
            if state in ("awaiting-approval", "declined"):
                self.run["status"] = state
                self._save()
                self._audit("run", state)
                return ExitCode.ABORTED
            self._rollback(index)
            return ExitCode.FAILURE
        self.run["status"] = "dry-run" if self._dry_run else "done"
        self.run["finished_at"] = utc_now()
        self._save()
        self._audit("run", self.run["status"])
        return ExitCode.OK

    def _expand(self, step: Step, record: dict, index: int) -> tuple[str, str, None]:
        """Put one copy of the loop's steps per item right after it (saved with the run, so a
        resumed run walks the same items)."""
        try:
            text = render(step.for_each or "", self._values(record))
        except _Missing as missing:
            if self._dry_run:
                return "would", f"loop over {{{{ {missing.args[0]} }}}}, which a step that did not run would capture", None
            return "failed", f"{{{{ {missing.args[0]} }}}} has no value", None
        try:
            items = orjson.loads(text)
        except orjson.JSONDecodeError:
            items = [part.strip() for part in text.split(",") if part.strip()]
        if not isinstance(items, list) or not all(isinstance(i, (str, int)) for i in items):
            return "failed", f"for_each: {text!r} is not a list of names", None
        expanded = [_record(sub, [*record["ref"], j], item=str(item))
                    for item in items for j, sub in enumerate(step.steps or [])]
        self.run["steps"][index + 1:index + 1] = expanded
        return "done", f"{len(items)} item(s): {', '.join(str(i) for i in items)}", None

    def _step(self, step: Step, record: dict, changed: bool) -> tuple[str, str, Outcome | None]:
        values = self._values(record)
        try:
            if step.kind == "wait":
                if self._dry_run:
                    return "would", f"wait {step.wait:g}s", None
                self._sleep(step.wait or 0)
                return "done", f"waited {step.wait:g}s", None
            if step.kind == "approve":
                return self._approve(render(step.approve or "", values))
            if step.kind == "check":
                if self._dry_run and changed:
                    return "would", f"check {' '.join(_argv(step.check.run, values))}", None  # type: ignore[union-attr]
                return self._check(step, values)
            if step.kind == "for_each":
                raise AssertionError("expanded by _expand")
            argv = _argv(step.run, values)  # type: ignore[arg-type]
            if self._dry_run and not step.read_only:
                if step.dry_run is None:
                    return "would", f"run {' '.join(argv)}", None
                argv = _argv(step.dry_run, values)
                outcome = _invoke(self._root, argv)
                if outcome.code not in step.ok_codes:
                    return "failed", f"{' '.join(argv)} exited {outcome.code}: {_short(outcome)}", outcome
                return "would", f"run {' '.join(_argv(step.run, values))} ({' '.join(argv)}: ok)", outcome  # type: ignore[arg-type]
            outcome = _invoke(self._root, argv)
            if outcome.code not in step.ok_codes:
                return "failed", f"{' '.join(argv)} exited {outcome.code}: {_short(outcome)}", outcome
            problem = self._capture(step, outcome, values)
            if problem:
                return "failed", problem, outcome
            return "done", f"{' '.join(argv)} (exit {outcome.code})", outcome
        except _Missing as missing:
            if self._dry_run:
                return "would", f"needs {{{{ {missing.args[0]} }}}}, which a step that did not run would capture", None
            return "failed", f"{{{{ {missing.args[0]} }}}} has no value", None

    def _approve(self, question: str) -> tuple[str, str, None]:
        if self._dry_run:
            return "would", f"ask: {question}", None
        if self._yes:
            return "done", f"approved by --yes ({self._who})", None
        if self._confirm is None:
            return "awaiting-approval", (f"{question} — no terminal to ask on: continue with "
                                         f"`flarectl playbook run {self.playbook.name} --resume {self.run['run_id']} --yes`"), None
        if self._confirm(question):
            return "done", f"approved by {self._who}", None
        return "declined", f"{question} — declined; --resume {self.run['run_id']} asks again", None

    def _check(self, step: Step, values: dict[str, str]) -> tuple[str, str, Outcome | None]:
        check = step.check
        assert check is not None
        argv = _argv(check.run, values)
        until = render(check.until, values)
        fail_when = None if check.fail_when is None else render(check.fail_when, values)
        deadline = None if check.timeout is None else time.monotonic() + check.timeout
        outcome: Outcome | None = None
        reason = ""
        for attempt in range(1, check.retries + 2):
            outcome = _invoke(self._root, argv)
            if outcome.code not in check.ok_codes:
                reason = f"{' '.join(argv)} exited {outcome.code}: {_short(outcome)}"
            else:
                try:
                    data = orjson.loads(outcome.stdout)
                except orjson.JSONDecodeError:
                    return "failed", f"{' '.join(argv)} did not print JSON (add -o json)", outcome
                if fail_when is not None and _truthy(found := jmespath.search(fail_when, data)):
                    return "failed", f"fail_when {fail_when!r} matched: {orjson.dumps(found).decode()[:300]}", outcome
                if _truthy(jmespath.search(until, data)):
                    problem = self._capture(step, outcome, values)
                    if problem:
                        return "failed", problem, outcome
                    return "done", f"{until!r} holds (attempt {attempt})", outcome
                reason = f"{until!r} does not hold"
            if attempt > check.retries or (deadline is not None and time.monotonic() + check.delay > deadline):
                break
            self._sleep(check.delay)
        return "failed", f"{reason} after {attempt} attempt(s)", outcome

    def _capture(self, step: Step, outcome: Outcome, values: dict[str, str]) -> str:
        if not step.capture:
            return ""
        try:
            data = orjson.loads(outcome.stdout)
        except orjson.JSONDecodeError:
            return "capture needs JSON output (add -o json)"
        for name, expression in step.capture.items():
            expression = render(expression, values)
            value = jmespath.search(expression, data)
            if value is None:
                return f"capture {name}: {expression!r} found nothing"
            self.run["captured"][name] = value if isinstance(value, str) else orjson.dumps(value).decode()
        return ""

    def _rollback(self, failed_index: int) -> None:
        """Completed steps' rollbacks, newest first; a failed `run` step's own first, since a
        command that failed may have done part of its work (an apply that then NACKed)."""
        self.run["status"] = "rolling-back"
        self._save()
        ok = True
        for index in range(failed_index, -1, -1):
            record = self.run["steps"][index]
            step = self._step_of(record)
            own = index == failed_index and step.kind == "run"
            if step.rollback is None or not (record["state"] == "done" or own):
                continue
            try:
                argv = _argv(step.rollback, self._values(record))
            except _Missing as missing:
                ok = False
                self._audit(record["name"], "rollback-failed",
                            detail={"detail": f"{{{{ {missing.args[0]} }}}} has no value"})
                continue
            outcome = _invoke(self._root, argv)
            state = "rolled-back" if outcome.code == 0 else "rollback-failed"
            ok = ok and outcome.code == 0
            record["state"] = state
            self.run["rollbacks"].append({"step": record["name"], "argv": argv, "code": outcome.code})
            self._save()
            self._audit(record["name"], state, outcome=outcome, detail={"detail": " ".join(argv)})
            self._report(f"  rollback {record['name']}: {' '.join(argv)} -> "
                         + ("ok" if outcome.code == 0 else f"exit {outcome.code}: {_short(outcome)}"))
        self.run["status"] = "rolled-back" if ok else "rollback-failed"
        self.run["finished_at"] = utc_now()
        self._save()
        self._audit("run", self.run["status"])

    # -- records ------------------------------------------------------------------------
    def _save(self) -> None:
        self._store.save(self.run)

    def _audit(self, step: str, result: str, *, outcome: Outcome | None = None, detail: dict | None = None) -> None:
        self._store.audit({
            "run_id": self.run["run_id"], "playbook": self.playbook.name, "who": self._who, "when": utc_now(),
            "step": step, "result": result, "dry_run": self._dry_run,
            "exit_code": None if outcome is None else outcome.code,
            "output_digest": None if outcome is None else digest(outcome.stdout + outcome.stderr),
            **(detail or {}),
        })


def interactive_confirm() -> Confirm | None:
    """typer.confirm on a terminal; None when stdin is not one (the gate then stops the run)."""
    if not sys.stdin.isatty():
        return None
    import typer

    return lambda question: typer.confirm(question, default=False)
