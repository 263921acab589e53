"""Reading YAML/JSON files an operator hands Flare, with limits an attacker cannot get past.

Used wherever a document, a scenario, a contexts file or a YAML config is read (flarectl's
files, `load_config`).

PyYAML's safe loader is safe from code execution, not from the file itself: 400 bytes of
nested aliases ("billion laughs") expand to billions of nodes once anything walks them,
deep nesting overflows the recursion limit, a duplicate `kind:` silently wins, and
`!!binary`, a lone surrogate or a 100-digit integer only fail later, deep inside a
serializer, as a traceback. Here every one of those is a `DocumentError` (an InvalidInput,
so exit 3) naming the problem and where it is, raised before any value is built:

- at most MAX_BYTES of input, read without loading more;
- nesting at most MAX_DEPTH deep; at most MAX_NODES nodes *counting each alias as the
  subtree it stands for* (so expansion is bounded, not just the alias count);
- mapping keys unique, and plain strings;
- only JSON's types: mappings, lists, strings, 64-bit integers, finite floats, booleans,
  null. Timestamps stay the text they were written as; `!!binary`, `!!set` and other
  tags are refused.

JSON input goes through the same checks (YAML is a superset of JSON).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, BinaryIO

import yaml
from yaml.composer import Composer, ComposerError
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode
from yaml.resolver import Resolver

from .errors import InvalidInput

__all__ = ["DocumentError", "MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "load_text", "load_file", "load_stream"]

# The largest document the control plane accepts (100k filter words x 64 chars) is ~7 MB of
# YAML; these leave room for that and nothing like a memory bomb.
MAX_BYTES = 32 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 2_000_000
_INT64 = range(-(2**63), 2**63)


class DocumentError(InvalidInput, ValueError):
    """Also a ValueError: config loaders that catch ValueError keep catching bad YAML."""

    code = "invalid_document"


class _Refused(Exception):
    """Raised inside the loader; turned into DocumentError with the file's name."""

    def __init__(self, message: str, node_or_mark: Any = None) -> None:
        mark = getattr(node_or_mark, "start_mark", node_or_mark)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        super().__init__(message + where)


class _Checks:
    """Depth and expanded-size accounting, unique keys and JSON types only: mixed in front of
    PyYAML's Python composer and safe constructor (whose methods it narrows)."""

    def _start_checks(self) -> None:
        self._depth = 0
        self._nodes = 0
        self._sizes: dict[int, int] = {}  # id(anchored node) -> nodes it expands to

    # -- composing: the only place aliases and nesting are seen -----------------------------
    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(AliasEvent):
            event = self.peek_event()
            node = super().compose_node(parent, index)
            self._count(self._sizes.get(id(node), 1), event.start_mark)
            return node
        event = self.peek_event()
        if isinstance(event, (SequenceStartEvent, MappingStartEvent)):
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise _Refused(f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        before = self._nodes
        self._count(1, event.start_mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            if isinstance(event, (SequenceStartEvent, MappingStartEvent)):
                self._depth -= 1
        if event.anchor is not None:
            self._sizes[id(node)] = self._nodes - before
        return node

    def _count(self, nodes: int, mark: Any) -> None:
        self._nodes += nodes
        if self._nodes > MAX_NODES:
            raise _Refused(f"expands to more than {MAX_NODES:,} values (aliases count as what they repeat)", mark)

    # -- constructing -----------------------------------------------------------------------
    def construct_mapping(self, node: Node, deep: bool = False) -> dict:
        if not isinstance(node, MappingNode):
            raise _Refused("expected a mapping", node)
        seen: dict[str, Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` fills keys in; keys written out may override them
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str):
                raise _Refused(f"mapping key {key!r} is not a string", key_node)
            if key in seen:
                raise _Refused(f"duplicate key {key!r} (first at line {seen[key].start_mark.line + 1})", key_node)
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)

    def construct_scalar(self, node: Node) -> Any:
        value = super().construct_scalar(node)
        if isinstance(value, str) and any("\ud800" <= ch <= "\udfff" for ch in value):
            raise _Refused("string holds a lone UTF-16 surrogate (not valid Unicode text)", node)
        return value

    def _int(self, node: ScalarNode) -> int:
        value = SafeConstructor.construct_yaml_int(self, node)
        if value not in _INT64:
            raise _Refused(f"integer {self.construct_scalar(node)[:40]} does not fit in 64 bits", node)
        return value

    def _float(self, node: ScalarNode) -> float:
        value = SafeConstructor.construct_yaml_float(self, node)
        if not math.isfinite(value):
            raise _Refused(f"{self.construct_scalar(node)!r} is not a finite number", node)
        return value

    def _as_text(self, node: ScalarNode) -> str:
        return self.construct_scalar(node)

    def _refuse_tag(self, node: Node) -> Any:
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        raise _Refused(f"YAML tag {tag} is not allowed here (only JSON types: mapping, list, string, "
                       "number, true/false, null)", node)


class _PythonLoader(_Checks, yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        yaml.SafeLoader.__init__(self, stream)
        self._start_checks()


if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _FastLoader(_Checks, Composer, CParser, SafeConstructor, Resolver):
        """libyaml's scanner and parser (10x faster on a 7 MB document) under the Python
        composer, which is where the checks live."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self._start_checks()

    _Loader: type = _FastLoader
else:  # pragma: no cover - PyYAML wheels ship libyaml
    _Loader = _PythonLoader

for _cls in {_PythonLoader, _Loader}:
    _cls.yaml_constructors = dict(SafeConstructor.yaml_constructors)
    _cls.add_constructor("tag:yaml.org,2002:int", _Checks._int)
    _cls.add_constructor("tag:yaml.org,2002:float", _Checks._float)
    _cls.add_constructor("tag:yaml.org,2002:timestamp", _Checks._as_text)
    for _tag in ("binary", "set", "omap", "pairs"):
        _cls.add_constructor(f"tag:yaml.org,2002:{_tag}", _Checks._refuse_tag)
    _cls.add_constructor(None, _Checks._refuse_tag)  # any other tag


def load_text(text: str, *, source: str = "<input>") -> Any:
    """The value of one YAML (or JSON) document, or DocumentError naming `source` and the problem."""
    if len(text) > MAX_BYTES:
        raise DocumentError(f"{source}: larger than {MAX_BYTES // (1024 * 1024)} MiB")
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    except _Refused as exc:
        raise DocumentError(f"{source}: {exc}") from None
    except ComposerError as exc:
        raise DocumentError(f"{source}: {_yaml_problem(exc)}") from None
    except ConstructorError as exc:
        raise DocumentError(f"{source}: {_yaml_problem(exc)}") from None
    except yaml.YAMLError as exc:
        raise DocumentError(f"{source} is neither YAML nor JSON: {_yaml_problem(exc)}") from None
    except RecursionError:  # belt and braces: MAX_DEPTH stops nesting far earlier
        raise DocumentError(f"{source}: nested too deeply") from None
    finally:
        loader.dispose()


def load_stream(stream: BinaryIO, *, source: str) -> Any:
    """Read at most MAX_BYTES (+1 to notice more) from a binary stream, then `load_text`."""
    data = stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise DocumentError(f"{source}: larger than {MAX_BYTES // (1024 * 1024)} MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"{source}: not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r})") from None
    return load_text(text, source=source)


def load_file(path: str | Path) -> Any:
    """`load_stream` of a file; an unreadable file is a DocumentError too."""
    try:
        with open(path, "rb") as stream:
            return load_stream(stream, source=str(path))
    except OSError as exc:
        raise DocumentError(f"cannot read {path}: {exc.strerror or exc}") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None) or str(exc)
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else problem
