"""The committed generated code matches the .proto files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generated_code_is_fresh() -> None:
    check = subprocess.run(
        [sys.executable, str(ROOT / "protos" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_every_field_and_method_is_documented() -> None:
    """The proto is the API documentation grpcurl shows: no field goes without a comment."""
    undocumented = []
    for proto in sorted((ROOT / "protos").glob("trading/**/*.proto")):
        lines = proto.read_text().splitlines()
        for number, line in enumerate(lines):
            code = line.strip()
            is_field = (
                code.endswith(";")
                and "=" in code
                and not code.startswith(("option", "//", "syntax", "package", "import"))
            )
            is_rpc = code.startswith("rpc ")
            if (is_field or is_rpc) and not lines[number - 1].strip().startswith("//"):
                undocumented.append(f"{proto.name}:{number + 1}: {code}")
    assert not undocumented, "\n".join(undocumented)
