"""gRPC adapter of trading.v1.MarketDataService: proto <-> quote board and fanout.

Thin on purpose: it validates through the domain, converts, and streams what the
fanout hands it. Domain errors it lets through are mapped to gRPC status by the
runtime's interceptor, inside the streaming generators too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from services.marketdata.fanout import Fanout
from services.marketdata.pacing import WriteBudget
from services.marketdata.quotes import Quote, QuoteBoard
from trading.v1 import common_pb2, marketdata_pb2, marketdata_pb2_grpc

# The fanout carries wire messages: the feed encodes each event once, however
# many subscribers receive it.
MarketDataFanout = Fanout[common_pb2.Quote, common_pb2.Trade]

# Stream writes in flight at once (pacing.py): few enough that a feed read does
# not queue behind hundreds of writes in grpc, enough to keep grpc busy. 32 kept
# the feed within ~5 ms of the engine with 1,000 subscribers (bench/profiles/fanout.md).
DEFAULT_WRITES_IN_FLIGHT = 32


def quote_to_proto(quote: Quote) -> common_pb2.Quote:
    return common_pb2.Quote(
        symbol=quote.symbol,
        bid_price=quote.bid_price,
        bid_quantity=quote.bid_quantity,
        ask_price=quote.ask_price,
        ask_quantity=quote.ask_quantity,
        last_price=quote.last_price,
        last_quantity=quote.last_quantity,
        volume=quote.volume,
        trade_count=quote.trade_count,
        timestamp_ns=quote.timestamp_ns,
        sequence=quote.sequence,
    )


def quote_from_proto(message: common_pb2.Quote) -> Quote:
    return Quote(
        message.symbol,
        message.bid_price,
        message.bid_quantity,
        message.ask_price,
        message.ask_quantity,
        message.last_price,
        message.last_quantity,
        message.volume,
        message.trade_count,
        message.timestamp_ns,
        message.sequence,
    )


class MarketDataServicer(marketdata_pb2_grpc.MarketDataServiceServicer):
    """Quotes and trades for any number of subscribers.

    Drop policy (services/marketdata/fanout.py): a slow StreamQuotes reader is
    conflated — it skips to the newest quote of each symbol and never holds more
    than one pending quote per symbol. StreamTrades never skips a trade: a reader
    more than `trade_queue_size` trades behind is disconnected with
    RESOURCE_EXHAUSTED and must resubscribe. Neither slows the other subscribers.
    Trade streams also end with UNAVAILABLE when the engine's feed had a gap
    (services/marketdata/feed.py), and every stream does when the server stops.

    Every write of both streams holds a share of one WriteBudget (pacing.py)
    until grpc has taken it, so however many subscribers there are, few writes
    are in flight, the feed is read as fast as the engine writes it, and quotes
    are conflated here instead of aging in the feed's transport buffers. Each
    write is awaited (grpc.aio resumes the generator once grpc has taken the
    message), so a stream never hands grpc more than its reader's flow-control
    window lets through; beyond that, its quotes wait here, conflated.
    """

    def __init__(
        self,
        board: QuoteBoard,
        fanout: MarketDataFanout,
        writes_in_flight: int = DEFAULT_WRITES_IN_FLIGHT,
    ) -> None:
        self._board = board
        self._fanout = fanout
        self._budget = WriteBudget(writes_in_flight)

    async def GetQuote(
        self, request: marketdata_pb2.GetQuoteRequest, context: grpc.aio.ServicerContext
    ) -> common_pb2.Quote:
        return quote_to_proto(self._board.quote(request.symbol))

    async def StreamQuotes(
        self, request: marketdata_pb2.StreamQuotesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[common_pb2.Quote]:
        board = self._board
        symbols = board.resolve_symbols(request.symbols)
        current = [(symbol, quote_to_proto(board.quote(symbol))) for symbol in symbols]
        budget = self._budget
        # Leaving the block (client cancel, server stop) unsubscribes.
        with self._fanout.subscribe_quotes(symbols, current) as subscription:
            while True:
                # A share first, then the read: a quote replaced while this
                # stream waited for its share is never sent.
                await subscription.wait()
                ticket = await budget.acquire()
                try:
                    quote = await anext(subscription)  # does not wait: wait() said so
                except StopAsyncIteration:
                    budget.release(ticket)
                    return
                try:
                    yield quote  # resumes once grpc has taken it
                finally:  # also when the stream ends at the yield
                    budget.release(ticket)

    async def StreamTrades(
        self, request: marketdata_pb2.StreamTradesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[common_pb2.Trade]:
        symbols = self._board.resolve_symbols(request.symbols)
        budget = self._budget
        with self._fanout.subscribe_trades(symbols) as subscription:
            async for trade in subscription:
                ticket = await budget.acquire()  # trades queue (bounded) while they wait
                try:
                    yield trade
                finally:
                    budget.release(ticket)
