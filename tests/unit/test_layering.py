"""The floors of docs/architecture.md §2, kept by reading every product module's imports.

Floors, bottom up (an arrow may only point to a floor below, or sideways where said):

    services.common            the kernel: ids, model, errors, codec, auth, config, paths, proto
    services.common.documents  the control-plane document models (both sides read them)
    services.backends          ports and adapters: the kernel only
    controlplane               the daemon and the agent: kernel, documents, backends
    services.<svc>, delivery   logic on ports: kernel, documents, backends, delivery, and
                               other services' `client` / `types` modules (never their insides)
    services.wiring            puts it together; the only floor of `services` that knows controlplane
    entry points               services/<svc>/__main__.py (`python -m services.<svc>`) and flarectl

Every `import` counts wherever it stands: module level, inside a function (a lazy import is
still a dependency), and under `if TYPE_CHECKING:` (a type-only arrow still ties two modules
together when one reads the code; the issue that asked for this test counts those cycles too).
Tests and benches are not product code and are not read. No import cycles between modules
either (a small DFS). KNOWN_IMPORTS and KNOWN_CYCLES list what other branches of issue 8
are cutting right now; each entry says which, and a test fails once an entry is stale, so
the lead deletes it when the fix merges instead of letting it hide a new offence.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("services", "controlplane", "flarectl")
SERVICES = ("filter", "gateway", "router", "session", "store", "sync")
SERVICE_SURFACE = ("client", "types")  # what one service may import of another

# Imports the floor and service checks tolerate for now: (source, target) -> why / until when.
KNOWN_IMPORTS: dict[tuple[str, str], str] = {
}

# A cycle the test tolerates, as the sorted tuple of its modules, with why and until when.
KNOWN_CYCLES: dict[tuple[str, ...], str] = {
}


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (the longest dotted name that is a product module)
    line: int

    def __str__(self) -> str:
        path = module_paths()[self.source].relative_to(ROOT)
        return f"{path}:{self.line}: {self.source} imports {self.target}"


_PATHS: dict[str, Path] = {}


def module_paths() -> dict[str, Path]:
    if not _PATHS:
        for package in PACKAGES:
            for path in sorted((ROOT / package).rglob("*.py")):
                if ".venv" in path.parts:
                    continue
                parts = list(path.relative_to(ROOT).with_suffix("").parts)
                if parts[-1] == "__init__":
                    parts.pop()
                _PATHS[".".join(parts)] = path
    return _PATHS


def _resolve(name: str) -> str | None:
    """The product module an import of `name` loads: `name` itself or its longest known prefix."""
    modules = module_paths()
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str) -> list[Import]:
    path = module_paths()[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import mod` imports pkg.mod when it is a module, else a name of pkg.
            names = [f"{base}.{alias.name}" if _resolve(f"{base}.{alias.name}") == f"{base}.{alias.name}"
                     else base for alias in node.names]
        for name in dict.fromkeys(names):
            target = _resolve(name)
            if target is not None and target != module:
                found.append(Import(module, target, node.lineno))
    return found


def floor(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "flarectl" or (parts[0] == "services" and parts[-1] == "__main__"):
        return "entry"
    if parts[0] == "controlplane":
        return "controlplane"
    if module == "services" or parts[1] == "common":
        return "documents" if parts[1:3] == ["common", "documents"] else "common"
    if parts[1] == "backends":
        return "backends"
    if parts[1] == "wiring":
        return "wiring"
    return "service"  # services.<svc>, services.delivery


ALLOWED: dict[str, set[str]] = {
    "common": {"common"},
    "documents": {"common", "documents"},
    "backends": {"common", "backends"},
    "controlplane": {"common", "documents", "backends", "controlplane"},
    "service": {"common", "documents", "backends", "service"},
    "wiring": {"common", "documents", "backends", "service", "wiring", "controlplane"},
    "entry": {"common", "documents", "backends", "service", "wiring", "controlplane", "entry"},
}


def _crosses_into_another_service(imp: Import) -> bool:
    """services.<a> may use services.<b>.client / .types only (its Protocol and result types)."""
    source, target = imp.source.split("."), imp.target.split(".")
    if floor(imp.target) != "service" or source[:2] == target[:2]:
        return False
    if target[1] not in SERVICES:
        return False  # services.delivery: shared by every service
    return len(target) < 3 or target[2] not in SERVICE_SURFACE


def all_imports() -> list[Import]:
    return [imp for module in module_paths() for imp in imports_of(module)]


def _offences(offends) -> list[Import]:
    return [imp for imp in all_imports() if offends(imp) and (imp.source, imp.target) not in KNOWN_IMPORTS]


def test_every_product_module_is_read():
    modules = module_paths()
    assert {"services.common.paths", "services.common.documents", "services.wiring.monolith",
            "controlplane.daemon", "flarectl.main"} <= set(modules)
    assert not [m for m in modules if m.startswith(("tests", "bench"))]
    # The resolver sees `from pkg import module`, relative and function-local imports.
    assert "controlplane.keys" in {imp.target for imp in imports_of("services.wiring.discovery")}
    assert "controlplane.roles" in {imp.target for imp in imports_of("controlplane.daemon")}
    assert "services.common.proto.controlplane_pb2" in {imp.target for imp in imports_of("controlplane.transport")}


def test_no_floor_imports_a_higher_one():
    wrong = [f"{imp}  ({floor(imp.source)} may not import {floor(imp.target)})"
             for imp in _offences(lambda imp: floor(imp.target) not in ALLOWED[floor(imp.source)])]
    assert wrong == [], "imports against the floors:\n" + "\n".join(wrong)


def test_a_service_uses_another_only_through_its_client_and_types():
    wrong = [str(imp) for imp in _offences(
        lambda imp: floor(imp.source) == "service" and _crosses_into_another_service(imp))]
    assert wrong == [], "a service reaching into another's insides:\n" + "\n".join(wrong)


def find_cycles(edges: dict[str, dict[str, Import]]) -> list[list[Import]]:
    """Each elementary cycle found by a DFS (one per back edge), as the imports that close it."""
    cycles: list[list[Import]] = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target, imp in sorted(edges.get(node, {}).items()):
            if state.get(target) == 1:
                loop = stack[stack.index(target):] + [target]
                cycles.append([edges[a][b] for a, b in zip(loop, loop[1:])])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return cycles


def test_no_import_cycles():
    edges: dict[str, dict[str, Import]] = {}
    for imp in all_imports():
        edges.setdefault(imp.source, {}).setdefault(imp.target, imp)
    cycles = find_cycles(edges)
    unknown = [c for c in cycles if tuple(sorted({imp.source for imp in c})) not in KNOWN_CYCLES]
    assert unknown == [], "import cycles:\n" + "\n".join(
        " -> ".join([c[0].source] + [imp.target for imp in c]) + "\n    " + "\n    ".join(map(str, c))
        for c in unknown)


def test_known_imports_are_still_there():
    # An entry that no longer matches an import is stale: delete it, so it cannot hide a new one.
    present = {(imp.source, imp.target) for imp in all_imports()}
    assert set(KNOWN_IMPORTS) <= present, f"stale KNOWN_IMPORTS entries: {set(KNOWN_IMPORTS) - present}"


def test_known_cycles_are_still_cycles():
    edges: dict[str, dict[str, Import]] = {}
    for imp in all_imports():
        edges.setdefault(imp.source, {}).setdefault(imp.target, imp)
    present = {tuple(sorted({imp.source for imp in c})) for c in find_cycles(edges)}
    assert set(KNOWN_CYCLES) <= present, f"stale KNOWN_CYCLES entries: {set(KNOWN_CYCLES) - present}"


def test_the_checks_catch_what_they_claim():
    # The rules themselves, on made-up imports, so a broken floor() cannot pass silently.
    assert floor("services.common.paths") == "common"
    assert floor("services.common.documents.push") == "documents"
    assert floor("services.router.__main__") == "entry" and floor("flarectl.main") == "entry"
    assert "controlplane" not in ALLOWED[floor("services.router.service")]
    assert "wiring" not in ALLOWED["controlplane"] and "service" not in ALLOWED["controlplane"]
    assert _crosses_into_another_service(Import("services.gateway.service", "services.router.service", 1))
    assert not _crosses_into_another_service(Import("services.gateway.service", "services.router.client", 1))
    a, b = Import("x", "y", 1), Import("y", "x", 2)
    assert find_cycles({"x": {"y": a}, "y": {"x": b}}) == [[a, b]]
    assert find_cycles({"x": {"y": a}, "y": {}}) == []
