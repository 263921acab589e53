"""The playbook file: a pydantic schema, loaded from YAML with errors that name line and field.

    name: rotate-filter-rules
    description: ...
    vars:
      file: {default: rules.yaml, description: the new document}
    steps:
      - name: diff
        run: config diff -f {{ file }}      # a flarectl command, run in-process (not a shell)
        read_only: true                     # so --dry-run runs it too
        ok_codes: [0, 1]
      - name: current
        run: config get filter-rules -o json
        read_only: true
        capture: {previous: version}        # JMESPath over the JSON output -> a variable
      - name: apply
        run: config apply -f {{ file }}
        dry_run: config apply -f {{ file }} --dry-run   # what --dry-run runs instead
        rollback: config rollback filter-rules --to {{ previous }} --yes
      - name: acked
        check:                              # JSON output + a JMESPath condition (Ansible's until)
          run: status -o json
          until: "!(instances[].kinds[] | [?kind=='filter-rules' && state!='SYNCED'])"
          fail_when: "instances[].kinds[] | [?state=='NACKED']"   # stop retrying at once
          retries: 30
          delay: 1s
          timeout: 60s
      - name: go
        approve: Apply to every instance?   # a TTY asks; --yes answers; neither = stop (exit 9)
      - name: settle
        wait: 5s

`{{ var }}` takes a declared variable, a value an earlier step captured, or `run_id`.
A check may only run a read-only command (READ_ONLY_COMMANDS), so --dry-run changes nothing.
"""

from __future__ import annotations

import re
import shlex
from typing import Any, Literal

import jmespath
import yaml
from jmespath.exceptions import JMESPathError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from services.common.durations import duration_seconds
from services.common.errors import InvalidInput
from services.common.safeyaml import load_text

__all__ = ["Playbook", "Step", "Check", "Var", "load_playbook", "parse_playbook", "READ_ONLY_COMMANDS",
           "VAR_PATTERN", "BUILTIN_VARS", "is_read_only"]

VAR_PATTERN = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
BUILTIN_VARS = frozenset({"run_id"})

# Commands that never change state (a prefix of the argv, plus flags it must carry).
READ_ONLY_COMMANDS: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    (("status",), ()),
    (("config", "get"), ()),
    (("config", "diff"), ()),
    (("config", "history"), ()),
    (("check",), ()),
    (("migrate", "status"), ()),
    (("migrate", "plan"), ()),
    (("migrate", "validate"), ()),
    (("archive", "plan"), ()),
    (("archive", "list"), ()),
    (("archive", "verify"), ()),
    (("playbook", "history"), ()),
    (("playbook", "validate"), ()),
    (("replay",), ("--dry-run",)),
    (("config", "apply"), ("--dry-run",)),
    (("config", "canary"), ("--dry-run",)),
    (("migrate", "up"), ("--dry-run",)),
    (("archive", "run"), ("--dry-run",)),
    (("restart",), ("--dry-run",)),
]


def is_read_only(argv: list[str]) -> bool:
    for prefix, flags in READ_ONLY_COMMANDS:
        if tuple(argv[:len(prefix)]) == prefix and all(f in argv for f in flags):
            return True
    return False


def _argv(value: str | list[str], field: str) -> list[str]:
    if isinstance(value, str):
        try:
            argv = shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"{field}: {exc}") from None
    else:
        argv = list(value)
    if not argv:
        raise ValueError(f"{field}: empty command")
    if argv[0] == "flarectl":
        argv = argv[1:]
    if argv[:2] == ["playbook", "run"]:
        raise ValueError(f"{field}: a playbook does not run playbooks")
    return argv


def _seconds(value: object, field: str) -> float:
    seconds = duration_seconds(str(value))
    if seconds is None:
        raise ValueError(f"{field}: {value!r} is not a duration (e.g. 500ms, 30s, 5m)")
    return seconds


def _placeholders(expression: str) -> str:
    """An expression as JMESPath sees it once {{ var }} is filled in (checked with a stand-in)."""
    return VAR_PATTERN.sub("0", expression)  # vars sit in quotes or backticks: 0 fits both


def _expression(value: str) -> str:
    try:
        jmespath.compile(value)
    except JMESPathError as exc:
        raise ValueError(f"not a JMESPath expression: {exc}") from None
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Var(_Model):
    default: str | None = None
    description: str = ""


class Check(_Model):
    run: str | list[str]
    until: str = Field(description="JMESPath over the command's JSON output; truthy = pass")
    fail_when: str | None = None  # truthy = fail now, no more retries
    retries: int = Field(0, ge=0, le=10_000)
    delay: float = 1.0
    timeout: float | None = None
    ok_codes: list[int] = [0]

    @field_validator("until", "fail_when")
    @classmethod
    def _jmespath(cls, value: str | None) -> str | None:
        if value is not None:
            _expression(_placeholders(value))
        return value

    @field_validator("delay", "timeout", mode="before")
    @classmethod
    def _duration(cls, value: object, info) -> float | None:
        return None if value is None else _seconds(value, info.field_name)

    @field_validator("run")
    @classmethod
    def _read_only(cls, value: str | list[str]) -> str | list[str]:
        argv = _argv(value, "run")
        if not is_read_only(argv):
            raise ValueError(f"a check runs read-only commands only; {' '.join(argv)!r} is not one")
        return value

    def argv(self) -> list[str]:
        return _argv(self.run, "run")


class Step(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    description: str = ""
    run: str | list[str] | None = None
    check: Check | None = None
    wait: float | None = None
    approve: str | None = None
    read_only: bool = False  # a `run` that changes nothing: --dry-run runs it too
    dry_run: str | list[str] | None = None  # what --dry-run runs instead of `run` (read-only)
    ok_codes: list[int] = [0]
    capture: dict[str, str] = {}  # variable -> JMESPath over the JSON output
    rollback: str | list[str] | None = None
    for_each: str | None = None  # a list (JSON, or comma-separated) -> `steps` once per item as {{ item }}
    steps: list[Step] | None = None

    @field_validator("wait", mode="before")
    @classmethod
    def _wait(cls, value: object) -> float | None:
        return None if value is None else _seconds(value, "wait")

    @field_validator("capture")
    @classmethod
    def _capture(cls, value: dict[str, str]) -> dict[str, str]:
        for name, expression in value.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"{name!r} is not a variable name")
            _expression(_placeholders(expression))
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        kinds = [k for k in ("run", "check", "wait", "approve", "for_each") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("a step has exactly one of run, check, wait, approve, for_each "
                             f"(got {', '.join(kinds) or 'none'})")
        if (self.for_each is None) != (self.steps is None):
            raise ValueError("for_each and steps go together")
        for sub in self.steps or []:
            if sub.for_each is not None:
                raise ValueError("a for_each step's steps do not loop again")
        if self.run is not None:
            argv = _argv(self.run, "run")
            if self.read_only and not is_read_only(argv):
                raise ValueError(f"read_only: {' '.join(argv)!r} is not a read-only command")
        if self.dry_run is not None:
            if self.run is None:
                raise ValueError("dry_run belongs to a run step")
            if not is_read_only(_argv(self.dry_run, "dry_run")):
                raise ValueError("dry_run: must be a read-only command (e.g. with --dry-run)")
        if self.rollback is not None:
            _argv(self.rollback, "rollback")
        if self.capture and self.run is None and self.check is None:
            raise ValueError("capture belongs to a run or check step")
        return self

    @property
    def kind(self) -> Literal["run", "check", "wait", "approve", "for_each"]:
        return next(k for k in ("run", "check", "wait", "approve", "for_each")  # type: ignore[return-value]
                    if getattr(self, k) is not None)

    def argv(self) -> list[str]:
        return _argv(self.run if self.run is not None else self.check.run, "run")  # type: ignore[union-attr]

    def templates(self) -> list[tuple[str, str]]:
        """(field, text) of every string that may hold {{ var }}."""
        out: list[tuple[str, str]] = []
        for field_name in ("run", "dry_run", "rollback", "approve", "for_each"):
            value = getattr(self, field_name)
            for part in ([value] if isinstance(value, str) else value or []):
                out.append((field_name, part))
        if self.check is not None:
            for part in ([self.check.run] if isinstance(self.check.run, str) else self.check.run):
                out.append(("check.run", part))
            out.append(("check.until", self.check.until))
            if self.check.fail_when:
                out.append(("check.fail_when", self.check.fail_when))
        out += [(f"capture.{k}", v) for k, v in self.capture.items()]
        return out


class Playbook(_Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    description: str = ""
    vars: dict[str, Var] = {}
    steps: list[Step] = Field(min_length=1)

    @field_validator("vars", mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        if isinstance(value, dict):  # `file: rules.yaml` is `file: {default: rules.yaml}`
            return {k: v if isinstance(v, dict) or v is None else {"default": str(v)} for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _names_and_vars(self) -> Playbook:
        known = set(self.vars) | set(BUILTIN_VARS)
        seen: set[str] = set()

        def check(where: str, step: Step) -> None:
            for field_name, text in step.templates():
                for name in VAR_PATTERN.findall(text):
                    if name not in known:
                        raise ValueError(f"{where}.{field_name}: {{{{ {name} }}}} is neither a var nor "
                                         "captured by an earlier step")

        for index, step in enumerate(self.steps):
            for name in [step.name, *(sub.name for sub in step.steps or [])]:
                if name in seen:
                    raise ValueError(f"steps[{index}].name: {name!r} is used twice")
                seen.add(name)
            check(f"steps[{index}]", step)
            known |= set(step.capture)
            if step.steps:
                known.add("item")
                for sub_index, sub in enumerate(step.steps):
                    check(f"steps[{index}].steps[{sub_index}]", sub)
                    known |= set(sub.capture)
                known.discard("item")
        return self


# -- loading with line numbers ------------------------------------------------------------

def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    line = None if node is None else node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def _field(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "list[str]"):
            continue  # pydantic's union-branch and validator labels, not fields
        else:
            out += ("." if out else "") + str(part)
    return out


def parse_playbook(text: str, *, source: str = "<playbook>") -> Playbook:
    # The bounded loader first (size, depth, aliases, duplicate keys: services.common.safeyaml);
    # the node tree after it only maps errors back to lines.
    data = load_text(text, source=source)
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise InvalidInput(f"{where}: not YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{source}: a playbook is a mapping with name and steps")
    try:
        return Playbook.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            lines.append(f"{source}:{_line_of(root, loc) or 1}: {_field(loc) or 'playbook'}: "
                         f"{error['msg'].removeprefix('Value error, ')}")
        raise InvalidInput("\n".join(dict.fromkeys(lines))) from None


def load_playbook(path: str) -> Playbook:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_playbook(text, source=path)
