"""`python -m services.<svc> --protocol rest` as a real process: it serves, the
launcher's /healthz probe sees it (over mTLS too), and SIGTERM drains it to exit 0."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from clients.tls import TlsFiles, server_name
from services.launcher import free_port, wait_serving_rest
from services.runtime.rest.tls import client_context
from tests.services.runtime.tls_support import make_pki

from .rest_support import call

pytestmark = pytest.mark.e2e


def start(service: str, port: int, *args: str, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", f"services.{service}", "--protocol", "rest"]
    command += ["--port", str(port), "--grace-seconds", "5", "--log-format", "text", *args]
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


async def test_plaintext_process_serves_and_exits_zero_on_sigterm(tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "risk.log"
    process = start("risk", port, "--plaintext", log=log)
    try:
        wait_serving_rest(f"127.0.0.1:{port}", "trading.v1.RiskService", timeout=20)
        async with aiohttp.ClientSession() as session:
            status, _, body = await call(session, "GET", f"http://127.0.0.1:{port}/metrics")
            assert status == 200 and "http_server_requests_total" in body
    finally:
        code = stop(process)
    output = log.read_text()
    assert code == 0, output
    assert "over HTTP/JSON" in output and "draining" in output and "stopped" in output


async def test_mtls_process_answers_a_mesh_client_and_exits_zero(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    port, log = free_port(), tmp_path / "matching.log"
    process = start("matching", port, "--tls-dir", str(pki), log=log)
    client = TlsFiles.of(pki, "client")
    try:
        address = f"127.0.0.1:{port}"
        wait_serving_rest(address, "trading.v1.MatchingEngine", 20, client, "matching")
        connector = aiohttp.TCPConnector(ssl=client_context(client))
        async with aiohttp.ClientSession(connector=connector) as session:
            status, _, book = await call(
                session,
                "GET",
                f"https://{address}/v1/books/AAPL",
                server_hostname=server_name("matching"),
            )
        assert (status, book["symbol"]) == (200, "AAPL")
    finally:
        code = stop(process)
    assert code == 0, log.read_text()


def test_a_missing_certificate_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.risk", "--protocol", "rest", "--tls-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "make certs" in result.stderr and "Traceback" not in result.stderr
