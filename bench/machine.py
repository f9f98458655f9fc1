"""What a run ran on: machine, versions and tools, recorded with every result."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.drivers.tools import version_of

PACKAGES = (
    "grpcio", "protobuf", "fastapi", "starlette", "uvicorn", "uvloop", "httptools",
    "aiohttp", "orjson", "pydantic", "opentelemetry-sdk", "prometheus-client",
)  # fmt: skip
TOOLS = {"h2load": ["h2load", "--version"], "wrk": ["wrk", "-v"], "ghz": ["ghz", "--version"]}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe() -> dict[str, Any]:
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": platform.python_version(),
        # Other work on the box skews every figure: the run says how busy it was.
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "packages": packages,
        "tools": {name: _short(version_of(command)) for name, command in TOOLS.items()},
    }


def _short(version: str | None) -> str | None:
    """Name and version only: 'wrk debian/4.1.0-3+b2 [epoll] ...' -> 'wrk debian/4.1.0-3+b2'."""
    return " ".join(version.split()[:2]) if version else None
