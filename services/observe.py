"""`make observe`: the mesh with tracing on, one traced order, and its trace as a tree.

Starts etcd and every service over mTLS as `make run` does, each process writing
its spans to var/traces/<service>-<n>.jsonl (--trace-file). As the `client`
identity, it offers AAPL and then buys through the offer via the mesh, the buy
inside a span of this process that is always sampled; the services follow the
caller's decision (parent-based sampling), so the whole order is traced. It
prints where metrics, logs and traces are, stops everything (each process
exports its last spans on the way out) and prints the buy's trace:
client -> orders -> risk Reserve -> matching Submit, then the settlement that
follows the answer (risk Settle).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from clients import trading
from clients.demo import describe_order
from clients.mesh import Channels, Mesh
from discovery import EtcdConfig
from services.launcher import LocalMesh
from services.runtime.telemetry.metrics import METRICS_PORT_OFFSET
from services.runtime.telemetry.trace_files import (
    JsonLinesSpanExporter,
    read_spans,
    render_tree,
)
from services.runtime.telemetry.tracing import build_tracer_provider, instrument_grpc
from trading.v1 import common_pb2, orders_pb2, orders_pb2_grpc

SYMBOL = "AAPL"


def client_tracing(trace_dir: Path) -> TracerProvider:
    """This process as the traced client: every root span sampled, spans to
    trace_dir/client.jsonl, channels instrumented (so context reaches orders)."""
    provider = build_tracer_provider(
        "client",
        "observe",
        sampler=ALWAYS_ON,
        exporter=JsonLinesSpanExporter(trace_dir / "client.jsonl"),
    )
    trace.set_tracer_provider(provider)
    instrument_grpc(provider, servers=False)
    return provider


async def place_traced_order(etcd: str, channels: Channels, tracer: trace.Tracer) -> str:
    """A resting offer, then a buy that trades with it inside one span; returns
    the buy's trace id."""
    run = time.strftime("%H%M%S")

    def order(account: str, key: str, side: int) -> orders_pb2.PlaceOrderRequest:
        return orders_pb2.PlaceOrderRequest(
            account_id=account,
            client_order_id=f"observe-{key}-{run}",
            symbol=SYMBOL,
            side=side,
            type=common_pb2.ORDER_TYPE_LIMIT,
            quantity=10,
            price=19_000,
        )

    async with Mesh.from_etcd(EtcdConfig.from_endpoints(etcd), channel_factory=channels) as mesh:
        orders = orders_pb2_grpc.OrderServiceStub(await mesh.channel(trading.ORDERS))
        offer = await orders.PlaceOrder(order("bob", "ask", common_pb2.SIDE_SELL))
        print("  " + describe_order(offer.order))
        with tracer.start_as_current_span("observe: alice buys") as span:
            bought = await orders.PlaceOrder(order("alice", "buy", common_pb2.SIDE_BUY))
        print("  " + describe_order(bought.order))
    return f"{span.get_span_context().trace_id:032x}"


def print_where_to_look(mesh: LocalMesh, trace_dir: Path) -> None:
    print("\nWhile it runs:")
    for key, proc in mesh.processes.items():
        url = f"http://{proc.host}:{proc.port + METRICS_PORT_OFFSET}/metrics"
        print(f"  {key:<13} {proc.address}  metrics {url}  spans {trace_dir / f'{key}.jsonl'}")
    print(f"  logs (JSON lines, with trace_id) in {mesh.state_dir / 'logs'}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Trace one order through the mesh.")
    parser.add_argument("--state-dir", type=Path, default=Path("var/observe"))
    parser.add_argument("--trace-dir", type=Path, default=Path("var/traces"))
    parser.add_argument("--tls-dir", type=Path, default=Path("certs"))
    parser.add_argument("--etcd-port", type=int, default=2379)
    parser.add_argument(
        "--keep-running", action="store_true", help="serve until Enter before stopping"
    )
    args = parser.parse_args(argv)

    args.trace_dir.mkdir(parents=True, exist_ok=True)
    for old in args.trace_dir.glob("*.jsonl"):
        old.unlink()  # this run's spans only
    provider = client_tracing(args.trace_dir)
    mesh = LocalMesh(
        args.state_dir,
        etcd_port=args.etcd_port,
        tls=True,
        tls_dir=args.tls_dir,
        trace_dir=args.trace_dir,
    )
    print(f"starting etcd and the mesh (mTLS), spans to {args.trace_dir} ...")
    with mesh.running():
        print("placing orders through the mesh as `client`:")
        tracer = provider.get_tracer(__name__)
        trace_id = asyncio.run(
            place_traced_order(mesh.etcd_endpoints, mesh.client_channels(), tracer)
        )
        print_where_to_look(mesh, args.trace_dir)
        if args.keep_running:
            input("\nPress Enter to stop the mesh ...")
        print("\nstopping (every process exports its last spans) ...")
    provider.shutdown()
    spans = read_spans(sorted(args.trace_dir.glob("*.jsonl")), trace_id)
    services = len({s["service"] for s in spans})
    print(f"\nThe buy's trace {trace_id}: {len(spans)} spans in {services} processes")
    print("(span, service, duration, status, endpoint the mesh chose, saga steps)\n")
    print("\n".join(render_tree(spans)))
    print(f"\nIts log lines: grep {trace_id} {mesh.state_dir / 'logs'}/*.log")
    return 0


if __name__ == "__main__":
    sys.exit(main())
