"""A short trading session through the generated gRPC clients.

Two accounts trade AAPL: bob offers, alice buys through the offers, and the demo
prints the fills, alice's and bob's order events, the trades and quotes that
market data fanned out, the book, alice's account, an idempotent replay and the
error an invalid order gets.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable

import grpc
from grpc_status import rpc_status

from clients import trading
from clients.channel_options import plaintext_channel
from clients.mesh import Channels, Mesh
from clients.tls import SecureChannels, TlsError, TlsFiles
from discovery import EtcdConfig
from trading.v1 import (
    common_pb2,
    marketdata_pb2,
    marketdata_pb2_grpc,
    matching_pb2,
    matching_pb2_grpc,
    orders_pb2,
    orders_pb2_grpc,
    risk_pb2,
    risk_pb2_grpc,
)

SYMBOL = "AAPL"
Printer = Callable[[str], None]


def describe_order(order: orders_pb2.Order) -> str:
    side = common_pb2.Side.Name(order.side).removeprefix("SIDE_")
    status = common_pb2.OrderStatus.Name(order.status).removeprefix("ORDER_STATUS_")
    price = f"@ {order.price}" if order.price else "MKT"
    return (
        f"{order.account_id}: {side} {order.quantity} {order.symbol} {price} -> {status}, "
        f"filled {order.filled_quantity}"
    )


async def _collect(stream: AsyncIterator, into: list) -> None:
    with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
        async for item in stream:
            into.append(item)


async def session(mesh: Mesh, say: Printer = print) -> dict[str, list]:
    """Runs the demo through `mesh`; returns what the streams saw (the e2e tests
    check it)."""
    run = time.strftime("%H%M%S")  # fresh idempotency keys for each run
    seen: dict[str, list] = {"alice": [], "bob": [], "trades": [], "quotes": []}
    orders_ch = await mesh.channel(trading.ORDERS)
    md_ch = await mesh.channel(trading.MARKETDATA)
    matching_ch = await mesh.channel(trading.MATCHING)
    risk_ch = await mesh.channel(trading.RISK)
    orders = orders_pb2_grpc.OrderServiceStub(orders_ch)
    market = marketdata_pb2_grpc.MarketDataServiceStub(md_ch)
    streams = [
        orders.StreamOrderEvents(orders_pb2.StreamOrderEventsRequest(account_id="alice")),
        orders.StreamOrderEvents(orders_pb2.StreamOrderEventsRequest(account_id="bob")),
        market.StreamTrades(marketdata_pb2.StreamTradesRequest(symbols=[SYMBOL])),
        market.StreamQuotes(marketdata_pb2.StreamQuotesRequest(symbols=[SYMBOL])),
    ]
    tasks = [asyncio.create_task(_collect(s, seen[k])) for s, k in zip(streams, seen, strict=True)]
    await asyncio.sleep(0.3)  # let the subscriptions reach the servers

    def order(account: str, key: str, side: int, qty: int, price: int):
        return orders_pb2.PlaceOrderRequest(
            account_id=account,
            client_order_id=f"{key}-{run}",
            symbol=SYMBOL,
            side=side,
            type=common_pb2.ORDER_TYPE_LIMIT,
            quantity=qty,
            price=price,
        )

    say("\n== bob offers 100 @ 18950 and 50 @ 19000")
    for request in (
        order("bob", "ask-1", common_pb2.SIDE_SELL, 100, 18_950),
        order("bob", "ask-2", common_pb2.SIDE_SELL, 50, 19_000),
    ):
        reply = await orders.PlaceOrder(request)
        say("  " + describe_order(reply.order))

    say("== alice buys 120 up to 19000: takes both levels")
    buy = order("alice", "buy-1", common_pb2.SIDE_BUY, 120, 19_000)
    reply = await orders.PlaceOrder(buy)
    say("  " + describe_order(reply.order))
    for fill in reply.fills:
        say(f"    fill {fill.quantity} @ {fill.price} (trade {fill.trade_id})")

    say("== alice sends the same order again (same client_order_id)")
    again = await orders.PlaceOrder(buy)
    say(
        f"  replayed={again.replayed}, "
        f"same order id: {again.order.order_id == reply.order.order_id}"
    )

    say("== an invalid order: MARKET with a price, quantity 0")
    bad = orders_pb2.PlaceOrderRequest(
        account_id="alice",
        client_order_id=f"bad-{run}",
        symbol=SYMBOL,
        side=common_pb2.SIDE_BUY,
        type=common_pb2.ORDER_TYPE_MARKET,
        quantity=0,
        price=5,
    )
    try:
        await orders.PlaceOrder(bad)
    except grpc.aio.AioRpcError as err:
        say(f"  {err.code().name}: {err.details()}")
        status = rpc_status.from_call(err)
        say(f"  (google.rpc.BadRequest details attached: {bool(status and status.details)})")

    book = await matching_pb2_grpc.MatchingEngineStub(matching_ch).GetBook(
        matching_pb2.GetBookRequest(symbol=SYMBOL, depth=5)
    )
    quote = await market.GetQuote(marketdata_pb2.GetQuoteRequest(symbol=SYMBOL))
    account = await risk_pb2_grpc.RiskServiceStub(risk_ch).GetAccount(
        risk_pb2.GetAccountRequest(account_id="alice")
    )
    say("== the book after the trades")
    for level in book.asks:
        say(f"  ask {level.quantity} @ {level.price} ({level.order_count} orders)")
    say(
        f"== quote: bid {quote.bid_quantity} @ {quote.bid_price}, ask {quote.ask_quantity} @ "
        f"{quote.ask_price}, last {quote.last_quantity} @ {quote.last_price}, "
        f"volume {quote.volume}"
    )
    position = next((p.quantity for p in account.positions if p.symbol == SYMBOL), 0)
    say(f"== alice: cash {account.cash}, {SYMBOL} position {position}")

    await asyncio.sleep(0.5)  # let the last events arrive
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks)

    say("== what the streams delivered")
    for account in ("alice", "bob"):
        for event in seen[account]:
            kind = orders_pb2.OrderEventType.Name(event.type).removeprefix("ORDER_EVENT_TYPE_")
            extra = f" {event.fill.quantity} @ {event.fill.price}" if event.HasField("fill") else ""
            say(f"  {account} order event #{event.sequence}: {kind}{extra}")
    say(f"  trades on {SYMBOL}: " + ", ".join(f"{t.quantity}@{t.price}" for t in seen["trades"]))
    say(f"  quote updates on {SYMBOL}: {len(seen['quotes'])}")
    return seen


def run_demo(etcd_endpoints: str, channels: Channels = plaintext_channel) -> dict[str, list]:
    """The demo against the services registered in etcd at `etcd_endpoints`;
    `channels` dials them (SecureChannels as the `client` identity for mTLS)."""

    async def run() -> dict[str, list]:
        config = EtcdConfig.from_endpoints(etcd_endpoints)
        async with Mesh.from_etcd(config, channel_factory=channels) as mesh:
            return await session(mesh)

    return asyncio.run(run())


def main() -> None:
    """`trademesh-demo`: mTLS as `client` with TRADEMESH_TLS_DIR (default certs/),
    or TRADEMESH_PLAINTEXT=1 against a mesh started with --plaintext."""
    channels: Channels = plaintext_channel
    if os.environ.get("TRADEMESH_PLAINTEXT", "") in ("", "0", "false"):
        tls_dir = os.environ.get("TRADEMESH_TLS_DIR", "certs")
        try:
            channels = SecureChannels(TlsFiles.of(tls_dir, "client"))
        except TlsError as exc:
            raise SystemExit(
                f"no client certificate in {tls_dir} ({exc}): run `make certs`, or set "
                "TRADEMESH_PLAINTEXT=1 for a plaintext mesh"
            ) from None
    run_demo(os.environ.get("TRADEMESH_ETCD_ENDPOINTS", "127.0.0.1:2379"), channels)


if __name__ == "__main__":
    main()
