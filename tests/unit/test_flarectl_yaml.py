"""Hostile YAML/JSON files given to flarectl: exit 3 and a message naming the problem, never
a traceback, and a billion-laughs file refused at once in bounded memory (issue 10 item 11).

Every file here is refused while it is read, before any control plane is contacted (the
target is an address nothing listens on: reaching it would be exit 4, not 3)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from services.common import safeyaml
from tests.cli_runner import run_cli
from flarectl.exitcodes import ExitCode
from flarectl.main import app

LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8)
) + "kind: push\nspec: {x: *i}\n"


@pytest.fixture
def apply(tmp_path, monkeypatch):
    monkeypatch.setenv("FLARECTL_CONFIG", str(tmp_path / "contexts.yaml"))
    monkeypatch.setenv("FLARE_CONTROLPLANE", "127.0.0.1:9")  # discard port: never reached
    monkeypatch.setenv("FLARE_TOKEN", "unused")

    def run(text: str | bytes):
        path = tmp_path / "doc.yaml"
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        result = run_cli(app, ["config", "apply", "-f", str(path)], env={"COLUMNS": "400"})
        return result.exit_code, result.stderr.replace(str(path), "FILE").strip(), result.stdout

    return run


CASES = [
    ("duplicate kind", "kind: push\nkind: routing\nspec: {}\n",
     "error: FILE: duplicate key 'kind' (first at line 1) (line 2, column 1)"),
    ("deep nesting", "kind: push\nspec: " + "[" * 5000 + "]" * 5000 + "\n",
     "error: FILE: nested deeper than 64 levels (line 2, column 70)"),
    ("lone surrogate", 'kind: "\\ud800"\nspec: {}\n',
     "error: FILE is neither YAML nor JSON: found invalid Unicode character escape code (line 1, column 10)"),
    ("integer over 64 bits", "kind: push\nspec: {batch: 18446744073709551616}\n",
     "error: FILE: integer 18446744073709551616 does not fit in 64 bits (line 2, column 15)"),
    ("binary", "kind: push\nspec: !!binary aGVsbG8=\n",
     "error: FILE: YAML tag !!binary is not allowed here (only JSON types: mapping, list, string, number, "
     "true/false, null) (line 2, column 7)"),
    ("kind is a list", "kind: [push]\nspec: {}\n", "error: FILE: kind: must be a string, got a list"),
    ("top level is a list", "- kind: push\n", "error: FILE: expected a document {kind, spec} (a mapping), got a list"),
    ("top level is a string", "just words\n",
     "error: FILE: expected a document {kind, spec} (a mapping), got a string"),
    ("empty", "", "error: FILE: expected a document {kind, spec} (a mapping), got nothing"),
    ("spec is a list", "kind: push\nspec: [1]\n", "error: FILE: spec: must be a mapping, got a list"),
    ("not UTF-8", b"kind: push\nspec: {a: \xff}\n", "error: FILE: not UTF-8 text (byte 21: b'\\xff')"),
    ("markup in a key", "kind: push\n'[/x]': 1\n'[/x]': 2\n",
     "error: FILE: duplicate key '[/x]' (first at line 2) (line 3, column 1)"),
    ("python tag", "kind: !!python/object/apply:os.system [ls]\n",
     "error: FILE: YAML tag !!python/object/apply:os.system is not allowed here (only JSON types: mapping, list, "
     "string, number, true/false, null) (line 1, column 7)"),
    ("billion laughs", LAUGHS,
     "error: FILE: expands to more than 2,000,000 values (aliases count as what they repeat) (line 7, column 14)"),
    ("broken syntax", "kind: [push\n", "error: FILE is neither YAML nor JSON: did not find expected ',' or ']' "
     "(line 2, column 1)"),
]


@pytest.mark.parametrize(("name", "text", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_files_exit_3_naming_the_problem(apply, name, text, message):
    code, stderr, stdout = apply(text)
    assert (code, stderr, stdout) == (ExitCode.INVALID, message, "")


def test_a_good_file_gets_past_the_reader(apply):
    # Exit 4 (unreachable control plane) proves the document itself was accepted.
    code, stderr, _ = apply("kind: push\nspec:\n  created: 2024-01-01\n  base: &b {a: 1}\n  more: {<<: *b, a: 2}\n")
    assert code == ExitCode.UNAVAILABLE, stderr


def test_python_and_libyaml_loaders_agree():
    text = "kind: push\nspec: {x: 99999999999999999999, when: 2024-01-01, <<: {y: 1}}\n"
    for loader in {safeyaml._PythonLoader, safeyaml._Loader}:
        with pytest.raises(safeyaml.DocumentError, match="does not fit in 64 bits"):
            _load(loader, text)
        assert _load(loader, "a: 2024-01-01\nb: {<<: {c: 1}, c: 2}\n") == {"a": "2024-01-01", "b": {"c": 2}}
        with pytest.raises(safeyaml.DocumentError, match="lone UTF-16 surrogate|invalid Unicode"):
            _load(loader, 'a: "\\ud800"\n')
        with pytest.raises(safeyaml.DocumentError, match="nested deeper than 64"):
            _load(loader, "[" * 100 + "]" * 100)


def _load(loader, text):
    original = safeyaml._Loader
    safeyaml._Loader = loader
    try:
        return safeyaml.load_text(text)
    finally:
        safeyaml._Loader = original


def test_largest_accepted_document_parses_quickly():
    # 100k filter words x 64 chars: the biggest document validation accepts (~7 MB).
    words = "".join(f"    - w{i:06d}{'x' * 57}\n" for i in range(100_000))
    started = time.monotonic()
    data = safeyaml.load_text(f"kind: filter-rules\nspec:\n  words:\n{words}")
    assert len(data["spec"]["words"]) == 100_000
    assert time.monotonic() - started < 10


def test_billion_laughs_is_refused_fast_in_bounded_memory(tmp_path):
    """In a child limited to 512 MiB of address space and 20 s: before the fix the expansion
    took flarectl to 10 GB and 46 s."""
    path = tmp_path / "laughs.yaml"
    path.write_text(LAUGHS)
    script = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (512 * 1024 * 1024, 512 * 1024 * 1024))
        from flarectl.main import main
        sys.argv = ["flarectl", "config", "apply", "-f", {str(path)!r}]
        main()
    """)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=20,
                          env={"NO_COLOR": "1", "COLUMNS": "400", "FLARE_CONTROLPLANE": "127.0.0.1:9",
                               "FLARE_TOKEN": "x", "FLARECTL_CONFIG": str(tmp_path / "c.yaml"), "PATH": "/usr/bin"})
    elapsed = time.monotonic() - started
    assert proc.returncode == ExitCode.INVALID, proc.stderr
    assert "expands to more than 2,000,000 values" in proc.stderr and "Traceback" not in proc.stderr
    assert elapsed < 10, elapsed


def test_every_yaml_flarectl_reads_goes_through_the_limits(tmp_path, monkeypatch):
    """stdin, `up --config`, `loadtest --scenario` and the contexts file: exit 3, no traceback."""
    env = {"COLUMNS": "400", "FLARE_CONTROLPLANE": "127.0.0.1:9", "FLARE_TOKEN": "x",
           "FLARECTL_CONFIG": str(tmp_path / "none.yaml")}

    def run(*args: str, input: str | None = None, **extra: str):
        result = run_cli(app, args, input=input, env={**env, **extra})
        return result.exit_code, result.stderr.replace(str(tmp_path), "TMP").strip()

    assert run("config", "apply", "-f", "-", input="kind: push\nkind: push\n") == (
        ExitCode.INVALID, "error: stdin: duplicate key 'kind' (first at line 1) (line 2, column 1)")

    laughs = tmp_path / "flare.yaml"
    laughs.write_text(LAUGHS.replace("kind: push\nspec: {x: *i}\n", "gateway: {port: *i}\n"))
    code, stderr = run("up", "--config", str(laughs), "--data-dir", str(tmp_path / "d"))
    assert (code, stderr) == (ExitCode.INVALID, "error: cannot load config: TMP/flare.yaml: expands to more than "
                              "2,000,000 values (aliases count as what they repeat) (line 7, column 14)")

    scenario = tmp_path / "scenario.yaml"
    scenario.write_text("users: 10\nusers: 20\n")
    assert run("loadtest", "--scenario", str(scenario)) == (
        ExitCode.INVALID, "error: --scenario: TMP/scenario.yaml: duplicate key 'users' (first at line 1) "
                          "(line 2, column 1)")

    contexts = tmp_path / "contexts.yaml"
    contexts.write_text("current: a\ncontexts:\n  a: [not, a, mapping]\n")
    assert run("status", FLARECTL_CONFIG=str(contexts)) == (
        ExitCode.INVALID, "error: TMP/contexts.yaml: context 'a' must be a mapping (controlplane, token)")
    contexts.write_text("current: a\ncurrent: b\n")
    assert run("status", FLARECTL_CONFIG=str(contexts)) == (
        ExitCode.INVALID, "error: TMP/contexts.yaml: duplicate key 'current' (first at line 1) (line 2, column 1)")
