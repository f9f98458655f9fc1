"""The whole mesh as real processes on loopback, started once per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.launcher import LocalMesh


@pytest.fixture(scope="module")
def mesh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalMesh]:
    """etcd plus two instances of every service, found through the registry; a test
    module sets `MESH_OPTIONS = {"tls": True}` (LocalMesh fields) for mTLS."""
    state_dir: Path = tmp_path_factory.mktemp("mesh")
    started = LocalMesh.on_free_ports(state_dir, **getattr(request.module, "MESH_OPTIONS", {}))
    with started.running():
        yield started
    # Every service drained and exited cleanly.
    codes = {key: p.process.returncode for key, p in started.processes.items() if p.process}
    assert codes == dict.fromkeys(codes, 0), f"unclean exit; logs in {state_dir / 'logs'}"
