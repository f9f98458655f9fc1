"""trademesh on the command line: place, cancel and follow orders, read books, quotes
and accounts, and stream market data, every call through the mesh.

    python -m clients place alice buy 10 AAPL --price 18950
    python -m clients --etcd 127.0.0.1:2379 book AAPL --depth 5
    python -m clients --json quotes AAPL MSFT --count 3

Prices are integers in minor currency units (cents), as in the protos. Errors go
to stderr as `error: CODE: details` (exit 1); usage errors exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from clients.channel_options import plaintext_channel
from clients.mesh import Mesh
from clients.policy import ENDPOINT_FAILURES, ServicePolicy
from clients.tls import SecureChannels, TlsError, TlsFiles
from clients.trading import DEFAULT_ETCD, DEFAULT_PORTS, MARKETDATA, MATCHING, ORDERS, RISK
from discovery import EtcdConfig
from discovery.endpoint import split_address
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

ETCD_ENV = "TRADEMESH_ETCD_ENDPOINTS"
TLS_DIR_ENV = "TRADEMESH_TLS_DIR"
CLIENT_IDENTITY = "client"  # the certificate make certs issues for external clients
MAX_PAGE_SIZE = 1000  # ListOrdersRequest.page_size allows 1 to 1000
STREAMS = frozenset({"quotes", "trades", "events"})
SIDES = {"buy": common_pb2.SIDE_BUY, "sell": common_pb2.SIDE_SELL}
STATUSES = {
    "open": (common_pb2.ORDER_STATUS_NEW, common_pb2.ORDER_STATUS_PARTIALLY_FILLED),
    "filled": (common_pb2.ORDER_STATUS_FILLED,),
    "canceled": (common_pb2.ORDER_STATUS_CANCELED,),
    "rejected": (common_pb2.ORDER_STATUS_REJECTED,),
}

M = TypeVar("M", bound=Message)
Formatter = Callable[[M], Iterable[str]]


# -- settings: flags and environment, mapped in one place ----------------------------


@dataclass(frozen=True)
class CliSettings:
    """Where the services are and how to talk to them, for one invocation."""

    etcd_endpoints: str | None  # "host:port,...": discover through etcd; None: static
    addresses: Mapping[str, tuple[str, ...]]
    timeout: float = 5.0  # seconds per unary call
    as_json: bool = False
    tls_dir: str | None = "certs"  # the client identity's files; None: plaintext

    def open_mesh(self) -> Mesh:
        channels = (
            SecureChannels(TlsFiles.of(self.tls_dir, CLIENT_IDENTITY))
            if self.tls_dir
            else plaintext_channel
        )
        if self.etcd_endpoints:
            return Mesh.from_etcd(
                EtcdConfig.from_endpoints(self.etcd_endpoints), channel_factory=channels
            )
        return Mesh.static(self.addresses, channel_factory=channels)


def settings_from(args: argparse.Namespace, parser: argparse.ArgumentParser) -> CliSettings:
    static = {name: getattr(args, name) for name in DEFAULT_PORTS}
    if args.etcd and any(static.values()):
        parser.error("give either --etcd or static addresses (--orders, --risk, ...), not both")
    # Explicit static addresses win over etcd; without either, the etcd of `make run`.
    etcd = args.etcd or (None if any(static.values()) else os.environ.get(ETCD_ENV, DEFAULT_ETCD))
    if etcd is not None and not EtcdConfig.from_endpoints(etcd).endpoints:
        parser.error(f"no etcd endpoint in {etcd!r}; expected host:port[,host:port...]")
    addresses = {
        name: given or (f"127.0.0.1:{DEFAULT_PORTS[name]}",) for name, given in static.items()
    }
    tls_dir = None if args.plaintext else args.tls_dir
    return CliSettings(etcd, addresses, args.timeout, args.json, tls_dir)


# -- human output --------------------------------------------------------------------


def _enum(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix)


def _clock(ns: int) -> str:
    if not ns:
        return "-"
    seconds, rest = divmod(ns, 1_000_000_000)
    return time.strftime("%H:%M:%S", time.localtime(seconds)) + f".{rest // 1_000_000:03d}"


def _average(notional: int, quantity: int) -> str:
    whole, rest = divmod(notional, quantity)
    return str(whole) if not rest else f"{notional / quantity:.2f}"


def order_line(order: orders_pb2.Order) -> str:
    side = _enum(common_pb2.Side, order.side, "SIDE_")
    price = f"@ {order.price}" if order.type == common_pb2.ORDER_TYPE_LIMIT else "MKT"
    tif = _enum(common_pb2.TimeInForce, order.time_in_force, "TIME_IN_FORCE_")
    status = _enum(common_pb2.OrderStatus, order.status, "ORDER_STATUS_")
    if order.reject_reason:
        status += f" ({order.reject_reason})"
    filled = f"filled {order.filled_quantity}/{order.quantity}"
    if order.filled_quantity:
        filled += f" avg {_average(order.filled_notional, order.filled_quantity)}"
    return (
        f"{order.order_id}  {order.account_id} {side} {order.quantity} {order.symbol} {price} "
        f"{tif}  {status}  {filled}  key {order.client_order_id}"
    )


def fill_line(fill: orders_pb2.Fill) -> str:
    role = "taker" if fill.aggressor else "maker"
    return (
        f"fill {fill.quantity} @ {fill.price} ({role})  trade {fill.trade_id}  "
        f"{_clock(fill.timestamp_ns)}"
    )


def format_placed(reply: orders_pb2.PlaceOrderResponse) -> Iterable[str]:
    yield order_line(reply.order)
    yield from (f"  {fill_line(fill)}" for fill in reply.fills)
    if reply.replayed:
        yield "  (replayed: this key was used before; nothing new happened)"


def format_canceled(reply: orders_pb2.CancelOrderResponse) -> Iterable[str]:
    yield order_line(reply.order)
    yield f"  canceled {reply.canceled_quantity}"


def format_orders(reply: orders_pb2.ListOrdersResponse) -> Iterable[str]:
    yield from (order_line(order) for order in reply.orders)
    if not reply.orders:
        yield "no orders"
    if reply.next_page_token:
        yield f"(more orders than --limit {len(reply.orders)})"


def format_book(book: matching_pb2.BookSnapshot) -> Iterable[str]:
    def level(side: str, lvl: common_pb2.PriceLevel) -> str:
        plural = "" if lvl.order_count == 1 else "s"
        return f"  {side} {lvl.quantity:>8} @ {lvl.price:<10} {lvl.order_count} order{plural}"

    yield f"{book.symbol}  sequence {book.sequence}"
    yield from (level("ask", lvl) for lvl in reversed(book.asks))  # best ask next to best bid
    yield "  " + "-" * 36
    yield from (level("bid", lvl) for lvl in book.bids)


def _side_of_quote(quantity: int, price: int) -> str:
    return f"{quantity} @ {price}" if quantity else "-"


def quote_line(quote: common_pb2.Quote) -> str:
    return (
        f"{_clock(quote.timestamp_ns)}  {quote.symbol}  "
        f"bid {_side_of_quote(quote.bid_quantity, quote.bid_price)}  "
        f"ask {_side_of_quote(quote.ask_quantity, quote.ask_price)}  "
        f"last {_side_of_quote(quote.last_quantity, quote.last_price)}  "
        f"volume {quote.volume} ({quote.trade_count} trades)"
    )


def trade_line(trade: common_pb2.Trade) -> str:
    side = _enum(common_pb2.Side, trade.taker_side, "SIDE_")
    return (
        f"{_clock(trade.timestamp_ns)}  {trade.symbol}  {trade.quantity} @ {trade.price}  "
        f"{side} taker  trade {trade.trade_id}  #{trade.sequence}"
    )


def event_line(event: orders_pb2.OrderEvent) -> str:
    kind = _enum(orders_pb2.OrderEventType, event.type, "ORDER_EVENT_TYPE_")
    line = f"#{event.sequence} {kind:<8} {order_line(event.order)}"
    return line + (f"  {fill_line(event.fill)}" if event.HasField("fill") else "")


def format_account(account: risk_pb2.Account) -> Iterable[str]:
    yield (
        f"{account.account_id}  cash {account.cash}  reserved {account.reserved_cash}  "
        f"buying power {account.buying_power}"
    )
    for p in account.positions:
        yield (
            f"  {p.symbol:<8} position {p.quantity}  "
            f"working buy {p.reserved_buy}  working sell {p.reserved_sell}"
        )
    limits = account.limits
    yield (
        f"  limits: order quantity {limits.max_order_quantity}, "
        f"order notional {limits.max_order_notional}, position {limits.max_position}"
    )


# -- commands ----------------------------------------------------------------------


@dataclass
class Session:
    """One invocation: its arguments, settings and mesh."""

    args: argparse.Namespace
    settings: CliSettings
    mesh: Mesh

    async def stub(self, factory: Callable[[Any], Any], policy: ServicePolicy) -> Any:
        return factory(await self.mesh.channel(policy))

    def show(self, message: M, formatter: Formatter[M], *, compact: bool = False) -> None:
        if self.settings.as_json:
            print(_to_json(message, compact), flush=True)
        else:
            for line in formatter(message):
                print(line, flush=True)  # flushed: streams are read line by line


def _to_json(message: Message, compact: bool) -> str:
    return str(
        json_format.MessageToJson(
            message, indent=None if compact else 2, always_print_fields_with_no_presence=True
        )
    )


def _one(line: Callable[[M], str]) -> Formatter[M]:
    return lambda message: (line(message),)


def _order_ref(args: argparse.Namespace) -> dict[str, str]:
    return {"client_order_id": args.key} if args.key else {"order_id": args.order_id}


async def place(session: Session) -> None:
    args = session.args
    key = args.key or uuid.uuid4().hex
    request = orders_pb2.PlaceOrderRequest(
        account_id=args.account,
        client_order_id=key,
        symbol=args.symbol,
        side=SIDES[args.side],
        type=common_pb2.ORDER_TYPE_MARKET if args.price is None else common_pb2.ORDER_TYPE_LIMIT,
        time_in_force=common_pb2.TIME_IN_FORCE_IOC if args.ioc else 0,
        quantity=args.quantity,
        price=args.price or 0,
    )
    orders = await session.stub(orders_pb2_grpc.OrderServiceStub, ORDERS)
    try:
        reply = await orders.PlaceOrder(request, timeout=session.settings.timeout)
    except grpc.aio.AioRpcError as err:
        if err.code() in ENDPOINT_FAILURES:  # the order may or may not have been placed
            err.add_note(f"retry safely with the same key: --key {key}")
        raise
    session.show(reply, format_placed)


async def cancel(session: Session) -> None:
    args = session.args
    request = orders_pb2.CancelOrderRequest(account_id=args.account, **_order_ref(args))
    orders = await session.stub(orders_pb2_grpc.OrderServiceStub, ORDERS)
    session.show(
        await orders.CancelOrder(request, timeout=session.settings.timeout), format_canceled
    )


async def get_order(session: Session) -> None:
    args = session.args
    request = orders_pb2.GetOrderRequest(account_id=args.account, **_order_ref(args))
    orders = await session.stub(orders_pb2_grpc.OrderServiceStub, ORDERS)
    session.show(await orders.GetOrder(request, timeout=session.settings.timeout), _one(order_line))


async def list_orders(session: Session) -> None:
    """ListOrders page by page until --limit orders or the last page."""
    args = session.args
    statuses = sorted({s for name in args.status or () for s in STATUSES[name]})
    request = orders_pb2.ListOrdersRequest(
        account_id=args.account, symbol=args.symbol or "", statuses=statuses
    )
    orders = await session.stub(orders_pb2_grpc.OrderServiceStub, ORDERS)
    found: list[orders_pb2.Order] = []
    while True:
        request.page_size = min(args.limit - len(found), MAX_PAGE_SIZE)
        page = await orders.ListOrders(request, timeout=session.settings.timeout)
        found += page.orders
        request.page_token = page.next_page_token
        if not page.next_page_token or len(found) >= args.limit:
            break
    listing = orders_pb2.ListOrdersResponse(
        orders=found[: args.limit], next_page_token=request.page_token
    )
    session.show(listing, format_orders)


async def book(session: Session) -> None:
    request = matching_pb2.GetBookRequest(symbol=session.args.symbol, depth=session.args.depth)
    engine = await session.stub(matching_pb2_grpc.MatchingEngineStub, MATCHING)
    session.show(await engine.GetBook(request, timeout=session.settings.timeout), format_book)


async def quote(session: Session) -> None:
    request = marketdata_pb2.GetQuoteRequest(symbol=session.args.symbol)
    market = await session.stub(marketdata_pb2_grpc.MarketDataServiceStub, MARKETDATA)
    reply = await market.GetQuote(request, timeout=session.settings.timeout)
    session.show(reply, _one(quote_line))


async def account(session: Session) -> None:
    request = risk_pb2.GetAccountRequest(account_id=session.args.account)
    risk = await session.stub(risk_pb2_grpc.RiskServiceStub, RISK)
    session.show(await risk.GetAccount(request, timeout=session.settings.timeout), format_account)


async def _follow(session: Session, call: Any, line: Callable[[M], str]) -> None:
    """Prints a stream until --count items, --seconds, its end, or Ctrl-C."""
    count, seconds = session.args.count, session.args.seconds
    seen = 0
    try:
        async with asyncio.timeout(seconds):  # None: no time limit
            async for item in call:
                session.show(item, _one(line), compact=True)
                seen += 1
                if seen == count:
                    break
    except TimeoutError:
        pass  # --seconds elapsed: a normal end
    finally:
        call.cancel()  # no-op when the stream is over; frees the server's side otherwise


async def stream_quotes(session: Session) -> None:
    market = await session.stub(marketdata_pb2_grpc.MarketDataServiceStub, MARKETDATA)
    request = marketdata_pb2.StreamQuotesRequest(symbols=session.args.symbols)
    await _follow(session, market.StreamQuotes(request), quote_line)


async def stream_trades(session: Session) -> None:
    market = await session.stub(marketdata_pb2_grpc.MarketDataServiceStub, MARKETDATA)
    request = marketdata_pb2.StreamTradesRequest(symbols=session.args.symbols)
    await _follow(session, market.StreamTrades(request), trade_line)


async def stream_events(session: Session) -> None:
    orders = await session.stub(orders_pb2_grpc.OrderServiceStub, ORDERS)
    request = orders_pb2.StreamOrderEventsRequest(account_id=session.args.account)
    await _follow(session, orders.StreamOrderEvents(request), event_line)


Command = Callable[[Session], Coroutine[Any, Any, None]]


# -- the parser ----------------------------------------------------------------------


def _positive(kind: Callable[[str], int | float]) -> Callable[[str], Any]:
    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its errors
    return parse


def _addresses(text: str) -> tuple[str, ...]:
    found = tuple(part.strip() for part in text.split(",") if part.strip())
    try:
        for address in found:
            split_address(address)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if not found:
        raise argparse.ArgumentTypeError("expected host:port[,host:port...]")
    return found


def _global_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--etcd",
        metavar="HOST:PORT[,...]",
        help=f"discover the services through etcd (default: ${ETCD_ENV}, else {DEFAULT_ETCD})",
    )
    for name, port in DEFAULT_PORTS.items():
        parser.add_argument(
            f"--{name}",
            type=_addresses,
            metavar="HOST:PORT[,...]",
            help=f"static {name} address(es) instead of etcd (default 127.0.0.1:{port})",
        )
    parser.add_argument(
        "--timeout", type=_positive(float), default=5.0, help="seconds per call (default 5)"
    )
    parser.add_argument("--json", action="store_true", help="print responses as JSON")
    parser.add_argument(
        "--tls-dir",
        default=os.environ.get(TLS_DIR_ENV, "certs"),
        help=f"mTLS files of the '{CLIENT_IDENTITY}' identity (make certs; default ${TLS_DIR_ENV}"
        " or certs)",
    )
    parser.add_argument(
        "--plaintext", action="store_true", help="no TLS (a mesh run with --plaintext)"
    )


def _command(
    sub: Any, name: str, run: Command, help_text: str, **kwargs: Any
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, **kwargs)
    parser.set_defaults(run=run)
    return parser


def _order_ref_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("account", metavar="ACCOUNT")
    parser.add_argument("order_id", nargs="?", metavar="ORDER_ID")
    parser.add_argument("--key", metavar="CLIENT_ORDER_ID", help="the order's idempotency key")


def _order_commands(sub: Any) -> None:
    placing = _command(sub, "place", place, "place an order (LIMIT with --price, else MARKET)")
    placing.add_argument("account", metavar="ACCOUNT")
    placing.add_argument("side", type=str.lower, choices=sorted(SIDES))
    placing.add_argument("quantity", type=int, metavar="QTY")
    placing.add_argument("symbol", type=str.upper, metavar="SYMBOL")
    placing.add_argument("--price", type=int, help="limit price in minor units (cents)")
    placing.add_argument("--ioc", action="store_true", help="immediate or cancel")
    placing.add_argument(
        "--key", metavar="CLIENT_ORDER_ID", help="idempotency key (default: a fresh uuid4)"
    )
    _order_ref_arguments(_command(sub, "cancel", cancel, "cancel an order"))
    _order_ref_arguments(_command(sub, "order", get_order, "show one order"))
    listing = _command(sub, "orders", list_orders, "list an account's orders, newest first")
    listing.add_argument("account", metavar="ACCOUNT")
    listing.add_argument("--symbol", type=str.upper)
    listing.add_argument("--status", nargs="+", action="extend", choices=sorted(STATUSES))
    listing.add_argument("--limit", type=_positive(int), default=50, help="default 50")


def _market_commands(sub: Any) -> None:
    booking = _command(sub, "book", book, "price levels of one order book")
    booking.add_argument("symbol", type=str.upper, metavar="SYMBOL")
    booking.add_argument("--depth", type=_positive(int), default=10, help="levels per side")
    quoting = _command(sub, "quote", quote, "the current quote")
    quoting.add_argument("symbol", type=str.upper, metavar="SYMBOL")
    accounts = _command(sub, "account", account, "balances, positions and limits")
    accounts.add_argument("account", metavar="ACCOUNT")


def _bounds(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--count", type=_positive(int), help="stop after N messages")
    parser.add_argument("--seconds", type=_positive(float), help="stop after S seconds")


def _stream_commands(sub: Any) -> None:
    following = "; until Ctrl-C unless --count or --seconds"
    for name, run, what in (
        ("quotes", stream_quotes, "stream quotes"),
        ("trades", stream_trades, "stream the public trade tape"),
    ):
        parser = _command(sub, name, run, what + following)
        parser.add_argument("symbols", nargs="*", type=str.upper, metavar="SYMBOL")
        _bounds(parser)
    events = _command(sub, "events", stream_events, "stream an account's order events" + following)
    events.add_argument("account", metavar="ACCOUNT")
    _bounds(events)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trademesh", description="Trade through the trademesh services."
    )
    _global_options(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _order_commands(sub)
    _market_commands(sub)
    _stream_commands(sub)
    return parser


# -- running -------------------------------------------------------------------------


def report(err: grpc.aio.AioRpcError) -> None:
    """`error: CODE: details`, then one line per field violation, to stderr."""
    print(f"error: {err.code().name}: {err.details()}", file=sys.stderr)
    status = None
    with contextlib.suppress(ValueError):  # a details trailer that contradicts the call
        status = rpc_status.from_call(err)
    for detail in status.details if status else ():
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            for violation in bad_request.field_violations:
                print(f"  {violation.field}: {violation.description}", file=sys.stderr)
    for note in getattr(err, "__notes__", ()):
        print(note, file=sys.stderr)


async def _run(args: argparse.Namespace, settings: CliSettings) -> None:
    async with settings.open_mesh() as mesh:
        await args.run(Session(args, settings, mesh))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command in ("cancel", "order") and (args.order_id is None) == (args.key is None):
            parser.error(f"{args.command}: give ORDER_ID or --key CLIENT_ORDER_ID (one of them)")
        settings = settings_from(args, parser)
    except SystemExit as stop:  # argparse: usage errors exit 2, --help 0
        return stop.code if isinstance(stop.code, int) else 2
    try:
        asyncio.run(_run(args, settings))
    except grpc.aio.AioRpcError as err:
        report(err)
        return 1
    except TlsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # asyncio.run cancelled the command (the mesh is closed) and re-raised Ctrl-C.
        # Ending a stream so is its normal end; any other command was interrupted.
        return 0 if args.command in STREAMS else 130
    except BrokenPipeError:  # `trademesh quotes | head -1`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0
