"""Running an external load generator and taking its CPU time."""

from __future__ import annotations

import resource
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass


class ToolMissing(RuntimeError):
    """A load generator the run needs is not installed."""


@dataclass(frozen=True, slots=True)
class ToolRun:
    stdout: str
    stderr: str
    returncode: int
    cpu_s: float  # user + system time of the tool (the only child reaped meanwhile)


def require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise ToolMissing(
            f"{tool} is not installed: run `make bench-tools` (apt: nghttp2-client, wrk)"
        )
    return found


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_tool(command: Sequence[str], timeout_s: float) -> ToolRun:
    """Runs `command` to completion (killed after `timeout_s`). Its CPU comes from
    RUSAGE_CHILDREN: the benchmark reaps no other child while a tool runs."""
    before = _children_cpu()
    proc = subprocess.Popen(
        list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        err += f"\n(killed after {timeout_s:.0f} s)"
    return ToolRun(out, err, proc.returncode, _children_cpu() - before)


def version_of(command: Sequence[str]) -> str | None:
    """The first line a tool prints about its version, None when it is missing."""
    if shutil.which(command[0]) is None:
        return None
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0].strip() if text else None
