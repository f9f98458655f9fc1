"""The whole mesh as real processes on loopback, started once per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.launcher import SERVICE_ORDER, Mesh, free_port


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    state_dir: Path = tmp_path_factory.mktemp("mesh")
    started = Mesh(state_dir, ports={name: free_port() for name in SERVICE_ORDER})
    with started.running():
        yield started
    # Every service drained and exited cleanly.
    assert {p.name: p.process.returncode for p in started.processes.values()} == {
        name: 0 for name in started.processes
    }, f"a service did not exit cleanly; logs in {state_dir / 'logs'}"
