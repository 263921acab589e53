"""Regenerate the Python stubs for every .proto in this folder.

`python -m services.common.proto.generate`. grpcio-tools writes absolute imports
(`import x_pb2 as …`), which only work with this folder on sys.path; they are rewritten
package-relative so `services.common.proto.x_pb2_grpc` imports anywhere.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
_IMPORT = re.compile(r"^import (\w+_pb2) as (\w+)$", re.MULTILINE)


def generate(folder: Path = HERE) -> list[Path]:
    from grpc_tools import protoc  # a test/dev dependency only; runtime needs the stubs alone
    import grpc_tools

    protos = sorted(folder.glob("*.proto"))
    include = Path(grpc_tools.__file__).parent / "_proto"
    written: list[Path] = []
    for proto in protos:
        args = ["protoc", f"-I{folder}", f"-I{include}", f"--python_out={folder}", f"--pyi_out={folder}",
                f"--grpc_python_out={folder}", str(proto)]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {proto.name}")
        for generated in (folder / f"{proto.stem}_pb2_grpc.py", folder / f"{proto.stem}_pb2.py"):
            text = generated.read_text()
            generated.write_text(_IMPORT.sub(r"from . import \1 as \2", text))
            written.append(generated)
    return written


def main() -> None:
    for path in generate():
        print(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)


if __name__ == "__main__":
    sys.exit(main())
