"""RiskBook: limits, buying power, idempotency, tombstones and the reservation ledger."""

from __future__ import annotations

import random
from typing import NamedTuple

import pytest

from services.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from services.instruments import Instrument, InstrumentCatalog
from services.model import Side
from services.risk.accounts import (
    Account,
    AccountDefaults,
    Position,
    ReleaseResult,
    Reservation,
    RiskBook,
    RiskLimits,
)

CATALOG = InstrumentCatalog(
    [
        Instrument("AAPL", tick_size=1, lot_size=1, min_price=100, max_price=1_000_000),
        Instrument("BTCUSD", tick_size=100, lot_size=10, min_price=100_000, max_price=50_000_000),
    ]
)
DEFAULTS = AccountDefaults(
    initial_cash=10_000_000,
    max_order_quantity=1_000,
    max_order_notional=5_000_000,
    max_position=2_000,
)


@pytest.fixture
def book() -> RiskBook:
    return RiskBook(CATALOG, DEFAULTS)


def reserve(book: RiskBook, rid: str = "r1", **overrides: object):
    args: dict[str, object] = {
        "reservation_id": rid,
        "account_id": "acc-1",
        "symbol": "AAPL",
        "side": Side.BUY,
        "quantity": 10,
        "price": 1_000,
    }
    args.update(overrides)
    return book.reserve(**args)  # type: ignore[arg-type]


def violations_of(excinfo: pytest.ExceptionInfo[InvalidArgument]) -> dict[str, str]:
    return {v.field: v.description for v in excinfo.value.violations}


# -- accounts -------------------------------------------------------------------


def test_account_opens_with_defaults_on_first_reserve(book: RiskBook) -> None:
    with pytest.raises(NotFound, match="account acc-1 has no activity yet; accounts open with"):
        book.account("acc-1")
    result = reserve(book, quantity=10, price=1_000)
    assert not result.replayed
    assert book.account("acc-1") == Account(
        account_id="acc-1",
        cash=10_000_000,
        reserved_cash=10_000,
        positions=(Position("AAPL", 0, 10, 0),),
        limits=RiskLimits(1_000, 5_000_000, 2_000),
    )
    assert book.account("acc-1").buying_power == 10_000_000 - 10_000


def test_rejected_first_order_opens_no_account(book: RiskBook) -> None:
    with pytest.raises(FailedPrecondition):
        reserve(book, quantity=1_001)
    with pytest.raises(NotFound):
        book.account("acc-1")


def test_get_account_validates_id(book: RiskBook) -> None:
    with pytest.raises(InvalidArgument) as excinfo:
        book.account("")
    assert violations_of(excinfo) == {"account_id": "is required"}


def test_reservation_snapshot(book: RiskBook) -> None:
    r = reserve(book, side=Side.BUY, quantity=10, price=1_000).reservation
    assert (r.reservation_id, r.account_id, r.symbol, r.side) == ("r1", "acc-1", "AAPL", Side.BUY)
    assert (r.open_quantity, r.price, r.reserved_cash) == (10, 1_000, 10_000)
    s = reserve(book, "r2", side=Side.SELL, quantity=5, price=2_000).reservation
    assert (s.open_quantity, s.price, s.reserved_cash) == (5, 2_000, 0)


# -- limits ---------------------------------------------------------------------


def test_max_order_quantity(book: RiskBook) -> None:
    reserve(book, "ok", quantity=1_000, price=100)
    with pytest.raises(FailedPrecondition) as excinfo:
        reserve(book, "big", quantity=1_010, price=100)
    message = excinfo.value.message
    assert "max_order_quantity" in message
    assert "acc-1" in message and "1010" in message and "1000" in message


def test_max_order_notional(book: RiskBook) -> None:
    reserve(book, "ok", quantity=1_000, price=5_000)  # exactly 5_000_000
    with pytest.raises(FailedPrecondition) as excinfo:
        reserve(book, "big", quantity=1_000, price=5_001)
    message = excinfo.value.message
    assert "max_order_notional" in message
    assert "acc-1" in message and "5001000" in message and "5000000" in message


def test_max_order_notional_applies_to_sells_and_prices_market_at_band_top(book: RiskBook) -> None:
    # A MARKET sell of 6 AAPL is priced at max_price 1_000_000: 6_000_000 > 5_000_000.
    with pytest.raises(FailedPrecondition, match=r"max_order_notional.*6 x 1000000.*MARKET"):
        reserve(book, side=Side.SELL, quantity=6, price=0)
    assert reserve(book, side=Side.SELL, quantity=5, price=0).reservation.price == 1_000_000


def test_buying_power(book: RiskBook) -> None:
    # 2 x 5_000_000 exhausts the 10_000_000 cash; the third order finds nothing left.
    reserve(book, "a", quantity=1_000, price=5_000)
    reserve(book, "b", quantity=1_000, price=5_000)
    with pytest.raises(FailedPrecondition) as excinfo:
        reserve(book, "c", quantity=1, price=100)
    message = excinfo.value.message
    assert "buying_power" in message
    assert "acc-1" in message and "needs 100" in message and "0 available" in message
    # Sells need no cash.
    reserve(book, "d", side=Side.SELL, quantity=1, price=100)
    # Releasing one gives its cash back.
    assert book.release("a") == ReleaseResult(1_000, 5_000_000)
    reserve(book, "c", quantity=1, price=100)


def test_buying_power_for_market_buy_reserves_at_band_top(book: RiskBook) -> None:
    r = reserve(book, "m1", quantity=5, price=0).reservation
    assert (r.price, r.reserved_cash) == (1_000_000, 5_000_000)
    reserve(book, "m2", quantity=4, price=0)
    assert book.account("acc-1").buying_power == 1_000_000
    with pytest.raises(FailedPrecondition, match=r"buying_power.*needs 2000000.*1000000 available"):
        reserve(book, "m3", quantity=2, price=0)
    reserve(book, "m3", quantity=1, price=0)
    assert book.account("acc-1").buying_power == 0


def test_market_buy_fill_gives_back_the_unused_band(book: RiskBook) -> None:
    reserve(book, "m", quantity=5, price=0)
    account = book.apply_fill(reservation_id="m", trade_id="t1", price=1_500, quantity=5).account
    assert (account.cash, account.reserved_cash) == (10_000_000 - 7_500, 0)


def test_max_position_counts_working_buys(book: RiskBook) -> None:
    big = DEFAULTS.max_order_quantity
    reserve(book, "a", quantity=big, price=100)
    book.apply_fill(reservation_id="a", trade_id="t", price=100, quantity=big)  # position 1000
    reserve(book, "b", quantity=900, price=100)  # working 900: 1900
    reserve(book, "c", quantity=100, price=100)  # 2000 exactly
    with pytest.raises(FailedPrecondition) as excinfo:
        reserve(book, "d", quantity=1, price=100)
    message = excinfo.value.message
    assert "max_position" in message and "acc-1" in message
    assert "2001" in message and "position 1000" in message and "working buys 1000" in message
    assert "2000" in message


def test_max_position_counts_working_sells(book: RiskBook) -> None:
    reserve(book, "a", side=Side.SELL, quantity=1_000, price=100)
    reserve(book, "b", side=Side.SELL, quantity=1_000, price=100)  # -2000 exactly
    with pytest.raises(FailedPrecondition) as excinfo:
        reserve(book, "c", side=Side.SELL, quantity=1, price=100)
    message = excinfo.value.message
    assert "max_position" in message and "acc-1" in message
    assert "-2001" in message and "working sells 2000" in message and "-2000" in message
    # Buys are measured on their own side: they only raise the long reach.
    reserve(book, "d", side=Side.BUY, quantity=1, price=100)


def test_limits_are_per_account_and_per_symbol(book: RiskBook) -> None:
    reserve(book, "a", side=Side.SELL, quantity=1_000, price=100)
    reserve(book, "b", side=Side.SELL, quantity=1_000, price=100)
    reserve(book, "c", account_id="acc-2", side=Side.SELL, quantity=1_000, price=100)
    reserve(book, "d", symbol="BTCUSD", side=Side.SELL, quantity=10, price=100_000)


# -- validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"reservation_id": ""}, {"reservation_id": "is required"}),
        ({"reservation_id": "has space"}, {"reservation_id": "must be 1 to 64"}),
        ({"account_id": ""}, {"account_id": "is required"}),
        ({"account_id": "x" * 65}, {"account_id": "must be 1 to 64"}),
        ({"symbol": ""}, {"symbol": "is required"}),
        ({"symbol": "NOPE"}, {"symbol": "unknown symbol 'NOPE'; listed symbols are AAPL, BTCUSD"}),
        ({"side": 0}, {"side": "must be SIDE_BUY or SIDE_SELL"}),
        ({"side": 7}, {"side": "must be SIDE_BUY or SIDE_SELL"}),
        ({"quantity": 0}, {"quantity": "must be positive, got 0"}),
        ({"quantity": -5}, {"quantity": "must be positive, got -5"}),
        (
            {"symbol": "BTCUSD", "quantity": 15, "price": 100_000},
            {"quantity": "must be a multiple of the lot size 10"},
        ),
        ({"price": -1}, {"price": "must be positive"}),
        (
            {"symbol": "BTCUSD", "quantity": 10, "price": 100_050},
            {"price": "must be a multiple of the tick size 100"},
        ),
        ({"price": 99}, {"price": "must be within the price band 100..1000000"}),
        ({"price": 1_000_001}, {"price": "must be within the price band"}),
    ],
)
def test_reserve_validation(
    book: RiskBook, overrides: dict[str, object], expected: dict[str, str]
) -> None:
    with pytest.raises(InvalidArgument) as excinfo:
        reserve(book, **overrides)
    found = violations_of(excinfo)
    assert found.keys() == expected.keys()
    for name, text in expected.items():
        assert found[name].startswith(text), found[name]


def test_reserve_names_every_violation_at_once(book: RiskBook) -> None:
    with pytest.raises(InvalidArgument) as excinfo:
        book.reserve(reservation_id="", account_id="", symbol="", side=0, quantity=0, price=-1)
    assert set(violations_of(excinfo)) == {
        "reservation_id",
        "account_id",
        "symbol",
        "side",
        "quantity",
        "price",
    }


@pytest.mark.parametrize(
    ("overrides", "field", "text"),
    [
        ({"reservation_id": ""}, "reservation_id", "is required"),
        ({"reservation_id": "a/b"}, "reservation_id", "must be 1 to 64"),
        ({"trade_id": ""}, "trade_id", "is required"),
        ({"trade_id": "t" * 129}, "trade_id", "must be at most 128 characters"),
        ({"price": 0}, "price", "must be positive, got 0"),
        ({"quantity": -1}, "quantity", "must be positive, got -1"),
    ],
)
def test_apply_fill_validation(
    book: RiskBook, overrides: dict[str, object], field: str, text: str
) -> None:
    reserve(book)
    args: dict[str, object] = {"reservation_id": "r1", "trade_id": "t1", "price": 1_000}
    args["quantity"] = 1
    args.update(overrides)
    with pytest.raises(InvalidArgument) as excinfo:
        book.apply_fill(**args)  # type: ignore[arg-type]
    assert violations_of(excinfo) == {field: violations_of(excinfo)[field]}
    assert violations_of(excinfo)[field].startswith(text)


def test_release_validation(book: RiskBook) -> None:
    with pytest.raises(InvalidArgument) as excinfo:
        book.release("")
    assert violations_of(excinfo) == {"reservation_id": "is required"}


# -- idempotency ----------------------------------------------------------------


def test_reserve_is_idempotent(book: RiskBook) -> None:
    first = reserve(book)
    again = reserve(book)
    assert again.replayed and again.reservation == first.reservation
    assert book.account("acc-1").reserved_cash == 10_000  # held once


def test_reserve_replay_skips_limit_checks_and_shows_current_state(book: RiskBook) -> None:
    reserve(book, "a", quantity=1_000, price=5_000)
    reserve(book, "b", quantity=1_000, price=5_000)  # buying power now 0
    book.apply_fill(reservation_id="a", trade_id="t", price=5_000, quantity=400)
    again = reserve(book, "a", quantity=1_000, price=5_000)
    assert again.replayed
    assert (again.reservation.open_quantity, again.reservation.reserved_cash) == (600, 3_000_000)


def test_reserve_market_replay_matches_price_zero(book: RiskBook) -> None:
    reserve(book, "m", quantity=2, price=0)
    assert reserve(book, "m", quantity=2, price=0).replayed
    with pytest.raises(AlreadyExists):
        reserve(book, "m", quantity=2, price=1_000_000)  # same reserve price, different order


@pytest.mark.parametrize(
    "change",
    [
        {"account_id": "acc-2"},
        {"symbol": "BTCUSD", "quantity": 10, "price": 100_000},
        {"side": Side.SELL},
        {"quantity": 11},
        {"price": 1_001},
    ],
)
def test_reserve_same_id_different_order_is_already_exists(
    book: RiskBook, change: dict[str, object]
) -> None:
    reserve(book)
    with pytest.raises(AlreadyExists, match=r"reservation r1 already exists.*use a new"):
        reserve(book, **change)


def test_release_is_idempotent(book: RiskBook) -> None:
    reserve(book, quantity=10, price=1_000)
    assert book.release("r1") == ReleaseResult(10, 10_000)
    assert book.release("r1") == ReleaseResult(0, 0)
    account = book.account("acc-1")
    assert (account.reserved_cash, account.positions) == (0, ())


def test_released_reservation_replays_with_nothing_open(book: RiskBook) -> None:
    reserve(book)
    book.release("r1")
    again = reserve(book)
    assert again.replayed and again.reservation.open_quantity == 0
    assert book.account("acc-1").reserved_cash == 0


def test_apply_fill_is_idempotent_on_trade_id(book: RiskBook) -> None:
    reserve(book, quantity=10, price=1_000)
    first = book.apply_fill(reservation_id="r1", trade_id="t1", price=900, quantity=4)
    again = book.apply_fill(reservation_id="r1", trade_id="t1", price=900, quantity=4)
    assert not first.replayed and again.replayed
    assert again.account == first.account
    assert again.account.cash == 10_000_000 - 3_600
    # Same trade id on another reservation is another fill.
    reserve(book, "r2", quantity=10, price=1_000)
    assert not book.apply_fill(reservation_id="r2", trade_id="t1", price=900, quantity=4).replayed


def test_apply_fill_replay_after_reservation_is_exhausted(book: RiskBook) -> None:
    reserve(book, quantity=10)
    book.apply_fill(reservation_id="r1", trade_id="t1", price=1_000, quantity=10)
    assert book.apply_fill(reservation_id="r1", trade_id="t1", price=1_000, quantity=10).replayed


def test_apply_fill_same_trade_different_fill_is_already_exists(book: RiskBook) -> None:
    reserve(book)
    book.apply_fill(reservation_id="r1", trade_id="t1", price=1_000, quantity=4)
    with pytest.raises(AlreadyExists, match="trade t1 was already booked on reservation r1"):
        book.apply_fill(reservation_id="r1", trade_id="t1", price=1_000, quantity=5)


# -- tombstones -----------------------------------------------------------------


def test_release_of_unknown_id_leaves_a_tombstone(book: RiskBook) -> None:
    assert book.release("late") == ReleaseResult(0, 0)
    assert book.release("late") == ReleaseResult(0, 0)
    with pytest.raises(FailedPrecondition, match="reservation late was already released; use a"):
        reserve(book, "late")
    with pytest.raises(NotFound):  # nothing was held, nothing opened
        book.account("acc-1")
    reserve(book, "fresh")


def test_fill_on_tombstone_is_not_found(book: RiskBook) -> None:
    book.release("late")
    with pytest.raises(NotFound, match="reservation late does not exist"):
        book.apply_fill(reservation_id="late", trade_id="t1", price=1_000, quantity=1)


# -- fills ----------------------------------------------------------------------


def test_buy_fill_moves_cash_and_position(book: RiskBook) -> None:
    reserve(book, quantity=10, price=1_000)
    account = book.apply_fill(reservation_id="r1", trade_id="t1", price=950, quantity=4).account
    assert account.cash == 10_000_000 - 3_800
    assert account.reserved_cash == 6 * 1_000  # held at the reservation price
    assert account.positions == (Position("AAPL", 4, 6, 0),)


def test_sell_fill_moves_cash_and_position(book: RiskBook) -> None:
    reserve(book, side=Side.SELL, quantity=10, price=1_000)
    account = book.apply_fill(reservation_id="r1", trade_id="t1", price=1_050, quantity=4).account
    assert (account.cash, account.reserved_cash) == (10_000_000 + 4_200, 0)
    assert account.positions == (Position("AAPL", -4, 0, 6),)


def test_partial_fills_then_release_returns_exactly_the_rest(book: RiskBook) -> None:
    reserve(book, quantity=10, price=1_000)
    book.apply_fill(reservation_id="r1", trade_id="t1", price=1_000, quantity=3)
    book.apply_fill(reservation_id="r1", trade_id="t2", price=990, quantity=2)
    assert book.release("r1") == ReleaseResult(5, 5_000)
    account = book.account("acc-1")
    assert account.cash == 10_000_000 - 3_000 - 1_980
    assert account.reserved_cash == 0
    assert account.positions == (Position("AAPL", 5, 0, 0),)
    with pytest.raises(FailedPrecondition, match="exceeds its open quantity 0"):
        book.apply_fill(reservation_id="r1", trade_id="t3", price=1_000, quantity=1)


def test_partial_sell_fills_then_release(book: RiskBook) -> None:
    reserve(book, side=Side.SELL, quantity=10, price=1_000)
    book.apply_fill(reservation_id="r1", trade_id="t1", price=1_000, quantity=7)
    assert book.release("r1") == ReleaseResult(3, 0)
    assert book.account("acc-1").positions == (Position("AAPL", -7, 0, 0),)


def test_fill_above_open_quantity(book: RiskBook) -> None:
    reserve(book, quantity=10)
    book.apply_fill(reservation_id="r1", trade_id="t1", price=1_000, quantity=8)
    with pytest.raises(FailedPrecondition, match="fill of 3 on reservation r1 exceeds its open"):
        book.apply_fill(reservation_id="r1", trade_id="t2", price=1_000, quantity=3)
    assert book.account("acc-1").positions == (Position("AAPL", 8, 2, 0),)


def test_buy_fill_above_reservation_price(book: RiskBook) -> None:
    reserve(book, quantity=10, price=1_000)
    with pytest.raises(FailedPrecondition, match=r"buy fill at 1001 .* reserved price 1000"):
        book.apply_fill(reservation_id="r1", trade_id="t1", price=1_001, quantity=1)


def test_limit_sell_fill_below_limit_price(book: RiskBook) -> None:
    reserve(book, side=Side.SELL, quantity=10, price=1_000)
    with pytest.raises(FailedPrecondition, match=r"sell fill at 999 .* limit price 1000"):
        book.apply_fill(reservation_id="r1", trade_id="t1", price=999, quantity=1)
    reserve(book, "m", side=Side.SELL, quantity=1, price=0)  # MARKET takes any price
    book.apply_fill(reservation_id="m", trade_id="t1", price=100, quantity=1)


def test_fill_on_unknown_reservation(book: RiskBook) -> None:
    with pytest.raises(NotFound, match="reservation nope does not exist"):
        book.apply_fill(reservation_id="nope", trade_id="t1", price=1_000, quantity=1)


def test_defaults_refuse_impossible_values() -> None:
    with pytest.raises(ValueError, match="max_position must be positive"):
        AccountDefaults(max_position=0)
    with pytest.raises(ValueError, match="initial_cash must be 0 or more"):
        AccountDefaults(initial_cash=-1)


# -- invariants -----------------------------------------------------------------


class Order(NamedTuple):
    account_id: str
    side: Side
    quantity: int
    price: int


@pytest.mark.parametrize("seed", range(20))
def test_ledger_invariants_under_random_traffic(seed: int) -> None:
    """Reserve/fill/release at random: reserved amounts never go negative, and once
    every reservation is closed the account holds exactly what its fills say."""
    rng = random.Random(seed)
    book = RiskBook(CATALOG, DEFAULTS)
    accounts = ["a1", "a2"]
    orders: dict[str, Order] = {}  # open reservations
    expected_cash = dict.fromkeys(accounts, DEFAULTS.initial_cash)
    expected_pos: dict[tuple[str, str], int] = {}
    trade_no = 0

    def place(rid: str, order: Order) -> Reservation:
        return book.reserve(
            reservation_id=rid,
            account_id=order.account_id,
            symbol="AAPL",
            side=order.side,
            quantity=order.quantity,
            price=order.price,
        ).reservation

    def check_non_negative() -> None:
        for acc in accounts:
            try:
                account = book.account(acc)
            except NotFound:
                continue
            assert account.reserved_cash >= 0
            assert all(p.reserved_buy >= 0 and p.reserved_sell >= 0 for p in account.positions)

    for step in range(300):
        action = rng.random()
        if action < 0.45 or not orders:
            order = Order(
                rng.choice(accounts),
                rng.choice([Side.BUY, Side.SELL]),
                rng.randrange(1, 1_100),
                rng.choice([0, rng.randrange(100, 10_000)]),
            )
            try:
                place(f"r{step}", order)
            except FailedPrecondition:
                continue
            orders[f"r{step}"] = order
        elif action < 0.85:
            rid = rng.choice(sorted(orders))
            r = place(rid, orders[rid])  # a replayed Reserve reads the reservation as it stands
            if r.open_quantity == 0:
                continue
            qty = rng.randrange(1, r.open_quantity + 1)
            if r.side is Side.BUY:
                price = rng.randrange(100, r.price + 1)
            else:
                price = max(orders[rid].price, 100) + rng.randrange(0, 500)
            trade_no += 1
            tid = f"t{trade_no}"
            book.apply_fill(reservation_id=rid, trade_id=tid, price=price, quantity=qty)
            if rng.random() < 0.2:  # a retried fill changes nothing
                again = book.apply_fill(reservation_id=rid, trade_id=tid, price=price, quantity=qty)
                assert again.replayed
            sign = 1 if r.side is Side.BUY else -1
            expected_cash[r.account_id] -= sign * price * qty
            key = (r.account_id, r.symbol)
            expected_pos[key] = expected_pos.get(key, 0) + sign * qty
        else:
            rid = rng.choice(sorted(orders))
            book.release(rid)
            del orders[rid]
        check_non_negative()

    for rid in orders:
        book.release(rid)
    for acc in accounts:
        try:
            account = book.account(acc)
        except NotFound:
            continue
        assert account.reserved_cash == 0
        assert account.cash == expected_cash[acc]
        for p in account.positions:
            assert (p.reserved_buy, p.reserved_sell) == (0, 0)
            assert p.quantity == expected_pos[(acc, p.symbol)]
        held = {p.symbol for p in account.positions}
        assert held == {s for (a, s), q in expected_pos.items() if a == acc and q}


def test_release_and_fill_refuse_another_accounts_reservation() -> None:
    book = RiskBook(InstrumentCatalog.default(), AccountDefaults())
    book.reserve(
        reservation_id="r-owned",
        account_id="alice",
        symbol="AAPL",
        side=1,
        quantity=5,
        price=18_000,
    )
    with pytest.raises(InvalidArgument) as caught:
        book.release("r-owned", account_id="bob")
    assert caught.value.violations[0].field == "account_id"
    with pytest.raises(InvalidArgument):
        book.apply_fill(
            reservation_id="r-owned", trade_id="t1", price=18_000, quantity=1, account_id="bob"
        )
    assert book.release("r-owned", account_id="alice").released_quantity == 5
