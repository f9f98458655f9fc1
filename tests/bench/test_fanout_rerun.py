"""A second benchmark run on the same workdir still feeds the fan-out.

Regression: `python -m bench --out X` rerun with the same X reused the first
run's service state and client_order_id tags, so every order the fan-out's
feeder sent was an idempotent replay of an order already recorded: no order
reached the matching engine, no quote changed, and every subscriber of the
fan-out figure received nothing (0 quotes/s on both transports).

Each run here is its own process (as two `python -m bench` runs are): a gRPC
mTLS mesh on the workdir's state, the fan-out step with a few subscribers,
then the engine's trade count as market data reports it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 80


def one_run(out: str) -> None:
    """One benchmark run's fan-out figure on gRPC; prints its result as JSON."""
    from bench.__main__ import parse_args, settings_from
    from bench.deploy import MeshDeployment
    from bench.payloads import QUOTE_SYMBOL
    from bench.runner import Runner
    from bench.scenarios.fanout import fanout
    from clients.tls import server_name
    from trading.v1 import marketdata_pb2, marketdata_pb2_grpc

    out_dir = Path(out)
    args = parse_args(["--quick", "--out", out, "--workdir", str(out_dir / "work")])
    settings = settings_from(args, out_dir)
    mesh = MeshDeployment(
        "grpc", settings.workdir / "state" / "grpc-mTLS", certs_dir=settings.workdir / "certs"
    )
    mesh.start()
    try:
        m = fanout(5, 20.0)(Runner(settings, lambda _line: None, total=1), mesh)
        assert mesh.tls is not None
        material = mesh.tls.load()
        credentials = grpc.ssl_channel_credentials(material.ca, material.key, material.cert)
        options = [("grpc.ssl_target_name_override", server_name("marketdata"))]
        with grpc.secure_channel(mesh.address("marketdata"), credentials, options) as channel:
            stub = marketdata_pb2_grpc.MarketDataServiceStub(channel)
            quote = stub.GetQuote(marketdata_pb2.GetQuoteRequest(symbol=QUOTE_SYMBOL), timeout=10)
    finally:
        mesh.stop()
    result = {"quotes": m.requests, "p99_ms": m.latency_ms.get("p99", 0.0), "notes": m.notes}
    print("RESULT " + json.dumps(result | {"trades": quote.trade_count}))


def _run(out: Path) -> dict:
    code = f"from tests.bench.test_fanout_rerun import one_run; one_run({str(out)!r})"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def test_a_rerun_on_the_same_workdir_trades_and_delivers_quotes(tmp_path: Path) -> None:
    first = _run(tmp_path)
    second = _run(tmp_path)
    for run in (first, second):
        # The feeder's orders traded on this run's (fresh) engine ...
        assert run["trades"] > 0, run
        # ... and the subscribers received live quotes, with a real delivery lag
        # (a start-of-stream quote of an untraded symbol has timestamp 0).
        assert run["quotes"] > 0, run
        assert 0 < run["p99_ms"] < 60_000, run
        assert "got none" not in run["notes"], run
