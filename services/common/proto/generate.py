"""Regenerate the Python stubs for every .proto in this folder.

`python -m services.common.proto.generate`. grpcio-tools writes absolute imports
(`import x_pb2 as …`), which only work with this folder on sys.path; they are rewritten
package-relative so `services.common.proto.x_pb2_grpc` imports anywhere (the .pyi stubs
too, so type checkers resolve cross-file types like common.proto's Message).
`python -m services.common.proto.generate filter session` regenerates only those files.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
_IMPORT = re.compile(r"^import (\w+_pb2) as (\w+)$", re.MULTILINE)


def generate(folder: Path = HERE, names: Sequence[str] = ()) -> list[Path]:
    from grpc_tools import protoc  # a test/dev dependency only; runtime needs the stubs alone
    import grpc_tools

    protos = sorted(folder.glob("*.proto"))
    if names:
        protos = [p for p in protos if p.stem in names]
    include = Path(grpc_tools.__file__).parent / "_proto"
    written: list[Path] = []
    for proto in protos:
        args = ["protoc", f"-I{folder}", f"-I{include}", f"--python_out={folder}", f"--pyi_out={folder}",
                f"--grpc_python_out={folder}", str(proto)]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {proto.name}")
        for generated in (folder / f"{proto.stem}_pb2_grpc.py", folder / f"{proto.stem}_pb2.py",
                          folder / f"{proto.stem}_pb2.pyi"):
            text = generated.read_text()
            generated.write_text(_IMPORT.sub(r"from . import \1 as \2", text))
            written.append(generated)
    return written


def main() -> None:
    for path in generate(names=sys.argv[1:]):
        print(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)


if __name__ == "__main__":
    sys.exit(main())
