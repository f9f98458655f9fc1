"""One instrument's limit order book: price-time priority matching.

This is the engine's hot path, written for speed rather than elegance: slotted
records, a dict from price to level, and per side a sorted list of price keys kept
with `bisect` whose *last* element is the best price, so taking out an exhausted
best level is an O(1) `list.pop()`. The book knows prices, quantities and order
ids only; trade ids, timestamps and the event feed belong to the engine.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

from services.model import Side


@dataclass(slots=True)
class RestingOrder:
    """An order (or its unfilled rest) waiting on the book for a counterparty."""

    order_id: str
    account_id: str
    side: Side
    price: int
    remaining: int  # 0 once canceled: the level's deque drops it lazily


@dataclass(slots=True)
class Fill:
    """One match between the incoming order and a resting (maker) order."""

    maker_order_id: str
    maker_account_id: str
    price: int  # always the maker's price
    quantity: int


@dataclass(frozen=True, slots=True)
class LevelView:
    """Aggregated quantity at one price, as a snapshot reports it."""

    price: int
    quantity: int
    order_count: int


class Top(NamedTuple):
    """Best bid and ask (price 0 and quantity 0 for an empty side). A tuple, so the
    engine's per-order "did the top change?" check is one C-level comparison."""

    bid_price: int
    bid_quantity: int
    ask_price: int
    ask_quantity: int


EMPTY_TOP = Top(0, 0, 0, 0)


@dataclass(slots=True)
class MatchResult:
    """What the book did with an incoming order."""

    fills: list[Fill]
    filled: int
    resting: int  # quantity left on the book; the rest of the order (if any) was canceled


class _Level:
    """The FIFO queue at one price, with running totals so a snapshot or the top
    of book never walks the queue."""

    __slots__ = ("count", "orders", "price", "quantity")

    def __init__(self, price: int) -> None:
        self.price = price
        self.orders: deque[RestingOrder] = deque()
        self.quantity = 0  # sum of `remaining` of the live orders
        self.count = 0  # live orders; canceled ones may still sit in `orders`

    def view(self) -> LevelView:
        return LevelView(self.price, self.quantity, self.count)


class _BookSide:
    """The levels of one side. Keys are prices for bids and negated prices for
    asks, so on both sides ascending keys end with the best price."""

    __slots__ = ("keys", "levels", "sign")

    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.levels: dict[int, _Level] = {}
        self.keys: list[int] = []

    def best(self) -> _Level | None:
        keys = self.keys
        return self.levels[self.sign * keys[-1]] if keys else None

    def add(self, order: RestingOrder) -> None:
        level = self.levels.get(order.price)
        if level is None:
            level = self.levels[order.price] = _Level(order.price)
            insort(self.keys, self.sign * order.price)
        level.orders.append(order)
        level.quantity += order.remaining
        level.count += 1

    def remove_level(self, level: _Level) -> None:
        del self.levels[level.price]
        key = self.sign * level.price
        keys = self.keys
        if keys[-1] == key:  # the usual case: the best level was used up
            keys.pop()
        else:
            del keys[bisect_left(keys, key)]

    def depth(self, depth: int) -> list[LevelView]:
        levels, sign = self.levels, self.sign
        return [levels[sign * key].view() for key in reversed(self.keys[-depth:])]


class OrderBook:
    """Bids and asks of one symbol, matched by price then arrival time."""

    __slots__ = ("_asks", "_bids", "_by_id", "symbol")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self._bids = _BookSide(1)
        self._asks = _BookSide(-1)
        self._by_id: dict[str, RestingOrder] = {}

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._by_id

    def __len__(self) -> int:
        """Number of resting orders."""
        return len(self._by_id)

    def submit(
        self,
        order_id: str,
        account_id: str,
        side: Side,
        quantity: int,
        price: int | None,
        *,
        rest: bool,
    ) -> MatchResult:
        """Matches an incoming order while it crosses the opposite side.

        `price` None is a MARKET order (any price). With `rest` the unfilled part
        rests at `price` (GTC LIMIT); otherwise it is canceled (IOC, MARKET). The
        caller validated the order and guarantees `order_id` is not resting.
        """
        opposite, own = (self._asks, self._bids) if side is Side.BUY else (self._bids, self._asks)
        sign = opposite.sign
        # In key space (best = highest key on either side) the incoming order crosses
        # every level whose key is >= `floor`: a buy at 100 takes asks keyed >= -100.
        floor = None if price is None else sign * price
        fills: list[Fill] = []
        remaining = quantity
        by_id = self._by_id
        keys = opposite.keys
        while remaining and keys:
            key = keys[-1]
            if floor is not None and key < floor:
                break
            level = opposite.levels[sign * key]
            orders = level.orders
            while remaining and orders:
                maker = orders[0]
                if not maker.remaining:  # canceled earlier, removed lazily
                    orders.popleft()
                    continue
                traded = maker.remaining if maker.remaining < remaining else remaining
                maker.remaining -= traded
                level.quantity -= traded
                remaining -= traded
                fills.append(Fill(maker.order_id, maker.account_id, level.price, traded))
                if not maker.remaining:
                    orders.popleft()
                    level.count -= 1
                    del by_id[maker.order_id]
            if not level.count:
                opposite.remove_level(level)
        resting = 0
        if remaining and rest and price is not None:
            order = RestingOrder(order_id, account_id, side, price, remaining)
            own.add(order)
            by_id[order_id] = order
            resting = remaining
        return MatchResult(fills, quantity - remaining, resting)

    def cancel(self, order_id: str) -> int:
        """Removes a resting order; returns the quantity it still had (0 if none)."""
        order = self._by_id.pop(order_id, None)
        if order is None:
            return 0
        side = self._bids if order.side is Side.BUY else self._asks
        level = side.levels[order.price]
        canceled, order.remaining = order.remaining, 0
        level.quantity -= canceled
        level.count -= 1
        if not level.count:
            side.remove_level(level)
        elif level.orders[-1] is order:  # cheap to remove now; otherwise matching skips it
            level.orders.pop()
        elif len(level.orders) > 2 * level.count + 16:
            # Bound the dead entries of a level that a large order at its front keeps
            # alive while others come and go behind it; amortized O(1) per cancel.
            level.orders = deque(o for o in level.orders if o.remaining)
        return canceled

    def top(self) -> Top:
        """Best bid and ask with their total quantity."""
        bid, ask = self._bids.best(), self._asks.best()
        if bid is None and ask is None:
            return EMPTY_TOP
        return Top(
            bid.price if bid else 0,
            bid.quantity if bid else 0,
            ask.price if ask else 0,
            ask.quantity if ask else 0,
        )

    def depth(self, depth: int) -> tuple[list[LevelView], list[LevelView]]:
        """Up to `depth` aggregated levels per side, best first: (bids, asks)."""
        return self._bids.depth(depth), self._asks.depth(depth)
