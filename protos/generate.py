"""Generates the Python code of the trading contract with grpcio-tools.

`make protos` runs this to write `*_pb2.py`, `*_pb2_grpc.py` and `*.pyi` beside
each `.proto` file; `--check` regenerates into a temporary folder and fails if the
committed code differs, so a stale or hand-edited file never goes unnoticed.
"""

from __future__ import annotations

import argparse
import filecmp
import importlib.resources
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent
GENERATED_SUFFIXES = ("_pb2.py", "_pb2_grpc.py", "_pb2.pyi", ".binpb")
# The generated modules carry descriptors without comments; this set keeps them
# (--include_source_info), so server reflection can show the API documentation.
DESCRIPTOR_SET = Path("trading/v1/descriptor_set.binpb")


def _include_dirs() -> list[Path]:
    # google/protobuf/*.proto ship with grpcio-tools; google/rpc/*.proto ship with
    # googleapis-common-protos, which grpcio-status depends on.
    import google.rpc

    well_known = Path(str(importlib.resources.files("grpc_tools") / "_proto"))
    googleapis = Path(next(iter(google.rpc.__path__))).parent.parent
    return [PROTO_ROOT, well_known, googleapis]


def proto_files() -> list[Path]:
    return sorted(PROTO_ROOT.glob("trading/**/*.proto"))


def generate(out_dir: Path) -> None:
    (out_dir / DESCRIPTOR_SET).parent.mkdir(parents=True, exist_ok=True)
    args = ["grpc_tools.protoc", *(f"-I{d}" for d in _include_dirs())]
    args += [f"--python_out={out_dir}", f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}"]
    args += [
        "--include_imports",
        "--include_source_info",
        f"--descriptor_set_out={out_dir / DESCRIPTOR_SET}",
    ]
    args += [str(p.relative_to(PROTO_ROOT)) for p in proto_files()]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed: see the messages above")


def generated_files(root: Path) -> list[Path]:
    return sorted(
        p.relative_to(root)
        for p in root.glob("trading/**/*")
        if p.name.endswith(GENERATED_SUFFIXES)
    )


def stale_files() -> list[str]:
    """Names of generated files that differ from a fresh generation."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh_root = Path(tmp)
        generate(fresh_root)
        fresh, committed = generated_files(fresh_root), generated_files(PROTO_ROOT)
        stale = sorted(str(p) for p in set(fresh) ^ set(committed))
        stale += [
            str(p)
            for p in fresh
            if p in committed and not filecmp.cmp(fresh_root / p, PROTO_ROOT / p, shallow=False)
        ]
        return sorted(stale)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if generated code is stale")
    if parser.parse_args().check:
        stale = stale_files()
        if stale:
            print("stale generated code, run `make protos`:", *stale, sep="\n  ")
            return 1
        print("generated code is up to date")
        return 0
    generate(PROTO_ROOT)
    print(f"generated {len(generated_files(PROTO_ROOT))} files under {PROTO_ROOT / 'trading'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
