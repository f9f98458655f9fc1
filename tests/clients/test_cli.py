"""`python -m clients` against the whole mesh as real processes (etcd and two instances
of every service), one command per subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from clients.cli import main
from services.launcher import LocalMesh, free_port

# The mesh of these tests runs without TLS (mTLS has tests of its own).
PLAIN_CLI = [sys.executable, "-m", "clients", "--plaintext"]

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
# Only what the command line says: an etcd named by the environment must not leak in.
ENV = {k: v for k, v in os.environ.items() if k != "TRADEMESH_ETCD_ENDPOINTS"}


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    started = LocalMesh.on_free_ports(tmp_path_factory.mktemp("cli-mesh"))
    with started.running():
        yield started


def command(mesh: LocalMesh, *args: str) -> list[str]:
    return [*PLAIN_CLI, "--etcd", mesh.etcd_endpoints, *args]


def cli(mesh: LocalMesh, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(mesh, *args), capture_output=True, text=True, timeout=20, env=ENV, cwd=ROOT
    )


def ok(mesh: LocalMesh, *args: str) -> list[str]:
    """stdout lines of a command that must succeed quietly."""
    done = cli(mesh, *args)
    assert (done.returncode, done.stderr) == (0, ""), done
    return done.stdout.splitlines()


def placed(mesh: LocalMesh, *args: str) -> dict:
    return json.loads("\n".join(ok(mesh, "--json", "place", *args)))


def test_a_crossing_order_prints_its_fills(mesh: LocalMesh) -> None:
    resting = ok(mesh, "place", "bob", "sell", "50", "GOOG", "--price", "15000")
    assert len(resting) == 1 and "bob SELL 50 GOOG @ 15000 GTC  NEW  filled 0/50" in resting[0]

    taking = ok(mesh, "place", "alice", "buy", "30", "goog", "--price", "15100")
    assert "alice BUY 30 GOOG @ 15100 GTC  FILLED  filled 30/30 avg 15000" in taking[0]
    assert taking[1].startswith("  fill 30 @ 15000 (taker)  trade ")
    assert " key " in taking[0], "the generated idempotency key is shown for retries"


def test_replaying_a_key_returns_the_same_order(mesh: LocalMesh) -> None:
    first = ok(mesh, "place", "alice", "buy", "5", "AMZN", "--price", "12000", "--key", "k-1")
    again = ok(mesh, "place", "alice", "buy", "5", "AMZN", "--price", "12000", "--key", "k-1")
    assert first[0].split()[0] == again[0].split()[0]
    assert again[1:] == ["  (replayed: this key was used before; nothing new happened)"]


def test_cancel_by_order_id_and_by_key(mesh: LocalMesh) -> None:
    order_id = placed(mesh, "carol", "buy", "10", "TSLA", "--price", "9000")["order"]["orderId"]
    canceled = ok(mesh, "cancel", "carol", order_id)
    assert canceled[0].startswith(order_id) and "CANCELED" in canceled[0]
    assert canceled[1] == "  canceled 10"

    placed(mesh, "carol", "buy", "10", "TSLA", "--price", "9000", "--key", "c-2")
    assert ok(mesh, "cancel", "carol", "--key", "c-2")[1] == "  canceled 10"
    assert "CANCELED" in ok(mesh, "order", "carol", "--key", "c-2")[0]


def test_orders_lists_newest_first_with_filters_and_limit(mesh: LocalMesh) -> None:
    for price in ("1000", "1001", "1002"):
        placed(mesh, "lister", "buy", "1", "MSFT", "--price", price)
    placed(mesh, "lister", "buy", "1", "AAPL", "--price", "1000")

    lines = ok(mesh, "orders", "lister", "--symbol", "msft", "--status", "open", "--limit", "2")
    assert ["@ 1002" in lines[0], "@ 1001" in lines[1]] == [True, True]
    assert lines[2] == "(more orders than --limit 2)"
    listing = json.loads("\n".join(ok(mesh, "--json", "orders", "lister")))
    assert [o["symbol"] for o in listing["orders"]] == ["AAPL", "MSFT", "MSFT", "MSFT"]
    assert ok(mesh, "orders", "lister", "--status", "filled") == ["no orders"]


def test_book_quote_and_account(mesh: LocalMesh) -> None:
    placed(mesh, "maker", "buy", "3", "ESZ6", "--price", "500000")
    placed(mesh, "maker", "sell", "4", "ESZ6", "--price", "500100")
    placed(mesh, "maker", "sell", "2", "ESZ6", "--price", "500200")

    book = ok(mesh, "book", "ESZ6", "--depth", "5")
    assert book[0].startswith("ESZ6  sequence ")
    assert [line.split()[:4] for line in book[1:]] == [
        ["ask", "2", "@", "500200"],
        ["ask", "4", "@", "500100"],
        ["-" * 36],
        ["bid", "3", "@", "500000"],
    ]
    (quote,) = ok(mesh, "quote", "ESZ6")
    assert "ESZ6  bid 3 @ 500000  ask 4 @ 500100  last -  volume 0 (0 trades)" in quote
    account = ok(mesh, "account", "maker")
    assert account[0].startswith("maker  cash ")
    assert "ESZ6     position 0  working buy 3  working sell 6" in account[1]


def test_invalid_order_lists_field_violations(mesh: LocalMesh) -> None:
    done = cli(mesh, "place", "alice", "buy", "0", "AAPL", "--price", "5")
    assert done.returncode == 1 and done.stdout == ""
    first, *violations = done.stderr.splitlines()
    assert first.startswith("error: INVALID_ARGUMENT: ")
    assert [v.split(":")[0] for v in violations] == ["  quantity", "  price"]


def test_static_addresses_instead_of_etcd(mesh: LocalMesh) -> None:
    orders = ",".join(p.address for p in mesh.instances_of("orders"))
    static = [*PLAIN_CLI, "--orders", orders]
    done = subprocess.run(
        [*static, "place", "stat", "buy", "1", "MSFT", "--price", "1000", "--key", "s-1"],
        capture_output=True,
        text=True,
        timeout=20,
        env=ENV,
    )
    assert done.returncode == 0 and "stat BUY 1 MSFT @ 1000" in done.stdout, done


def test_unreachable_service_is_an_error_not_a_traceback() -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    done = subprocess.run(
        [*PLAIN_CLI, "--orders", nowhere, "place", "a", "buy", "1", "AAPL"],
        capture_output=True,
        text=True,
        timeout=20,
        env=ENV,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    error, *rest = done.stderr.splitlines()[-2:]
    assert error.startswith("error: UNAVAILABLE: ")
    assert rest == [f"retry safely with the same key: --key {done.stderr.split()[-1]}"]


def test_quotes_stop_after_count_or_seconds(mesh: LocalMesh) -> None:
    (line,) = ok(mesh, "quotes", "AAPL", "--count", "1")
    assert "  AAPL  bid " in line
    started = time.monotonic()
    (snapshot,) = ok(mesh, "--json", "quotes", "GOOG", "--seconds", "0.5")
    assert json.loads(snapshot)["symbol"] == "GOOG"
    assert time.monotonic() - started < 10


def test_events_and_trades_stream_what_happens(mesh: LocalMesh) -> None:
    events = subprocess.Popen(
        command(mesh, "events", "streamer", "--count", "1", "--seconds", "15"),
        **_pipes(),
    )
    trades = subprocess.Popen(
        command(mesh, "--json", "trades", "BTCUSD", "--count", "1", "--seconds", "15"),
        **_pipes(),
    )
    with events, trades:
        # The streams start with nothing: trade until both subscriptions have seen some.
        for _ in range(40):
            if events.poll() is not None and trades.poll() is not None:
                break
            placed(mesh, "seller", "sell", "10", "BTCUSD", "--price", "100000")
            placed(mesh, "streamer", "buy", "10", "BTCUSD", "--price", "100000")
        event_out, event_err = events.communicate(timeout=20)
        trade_out, trade_err = trades.communicate(timeout=20)
    assert (events.returncode, event_err, trades.returncode, trade_err) == (0, "", 0, "")
    assert event_out.startswith("#1 ACCEPTED ") and "streamer BUY 10 BTCUSD" in event_out
    assert json.loads(trade_out)["symbol"] == "BTCUSD"


def test_ctrl_c_ends_a_stream_cleanly(mesh: LocalMesh) -> None:
    with subprocess.Popen(command(mesh, "quotes", "MSFT"), **_pipes()) as stream:
        assert stream.stdout is not None
        assert "  MSFT  bid " in stream.stdout.readline()  # asyncio.run is up: Ctrl-C is ours
        stream.send_signal(signal.SIGINT)
        _, err = stream.communicate(timeout=20)
    assert (stream.returncode, err) == (0, "")


@pytest.mark.parametrize(
    "argv",
    [
        ["place", "a", "hold", "1", "AAPL"],
        ["place", "a", "buy", "one", "AAPL"],
        ["cancel", "a"],
        ["cancel", "a", "o-1", "--key", "k"],
        ["--orders", "nohost", "quote", "AAPL"],
        ["--etcd", "127.0.0.1:2379", "--orders", "127.0.0.1:1", "quote", "AAPL"],
        ["quotes", "AAPL", "--count", "0"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "usage: trademesh" in capsys.readouterr().err


def _pipes() -> dict:
    return {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, "env": ENV}


def test_missing_client_certificate_is_a_clear_error(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "clients", "--tls-dir", str(tmp_path), "quote", "AAPL"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "missing" in done.stderr and "client.pem" in done.stderr
    assert "Traceback" not in done.stderr
