"""SQLite persistence of orders and fills: the system of record.

One file, shared by every worker process of one OrderService (WAL mode lets
readers run beside the one writer; busy_timeout makes a writer wait its turn
instead of failing). Calls are synchronous and run directly on the event loop
thread, not in a thread pool: with WAL each one is sub-millisecond, far less than
a thread hop per call would cost, and running to completion without an await is
what makes a read-check-write sequence atomic within the process. A placement's
writes are grouped into one `transaction()` (BEGIN IMMEDIATE takes the write lock
up front, so a concurrent worker waits at BEGIN rather than failing at COMMIT);
never await inside one, or the write lock is held across the await.

Two outbox columns record what RiskService has not confirmed yet:
`fills.risk_state` (the fill still to be applied) and `orders.release_state` (the
reservation's rest still to be released once the order is settled).

`order_events` is the durable order event log every process of the service tails
for StreamOrderEvents (events.py). An event is appended in the transaction of the
change it reports, so it exists iff that change committed; and since a writer
holds the write lock from BEGIN IMMEDIATE to COMMIT, `seq` grows in commit order
across processes: a reader that has seen seq N has seen every event before it.

`symbol_leases` and `order_homes` serve re-homing (rehoming.py): the lease lets one
process at a time move a symbol's resting orders to another matching engine, and
each moved order records the engine it was submitted to, in its booking's
transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path
from typing import Any

from services.model import OrderSpec, OrderStatus, OrderType, Side, TimeInForce
from services.orders.events import OrderEvent, OrderEventType
from services.orders.lifecycle import Fill, Order


class Outbox(IntEnum):
    """Where a risk call recorded in an outbox column stands."""

    DUE = 0  # not confirmed yet: the settle pass (and the retry loop) will send it
    DONE = 1
    FAILED = 2  # refused for good by RiskService; logged, never retried


# Statements run one by one inside one transaction (executescript() would commit
# first), so two workers starting together create the schema once.
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS orders (
        order_id          TEXT PRIMARY KEY,
        account_id        TEXT NOT NULL,
        client_order_id   TEXT NOT NULL,
        symbol            TEXT NOT NULL,
        side              INTEGER NOT NULL,
        type              INTEGER NOT NULL,
        time_in_force     INTEGER NOT NULL,
        quantity          INTEGER NOT NULL,
        price             INTEGER NOT NULL,
        status            INTEGER,  -- NULL while pending
        filled_quantity   INTEGER NOT NULL DEFAULT 0,
        filled_notional   INTEGER NOT NULL DEFAULT 0,
        canceled_quantity INTEGER NOT NULL DEFAULT 0,
        reject_reason     TEXT NOT NULL DEFAULT '',
        error_code        TEXT NOT NULL DEFAULT '',
        created_at_ns     INTEGER NOT NULL,
        updated_at_ns     INTEGER NOT NULL,
        release_state     INTEGER NOT NULL DEFAULT 0,
        -- The idempotency key. The in-process dedupe comes first; this is the
        -- last line of defence when two workers race on one key.
        UNIQUE (account_id, client_order_id)
    )""",
    # ListOrders: newest first per account, optionally by symbol or by status.
    """CREATE INDEX IF NOT EXISTS orders_by_account
        ON orders (account_id, created_at_ns DESC, order_id DESC)""",
    """CREATE INDEX IF NOT EXISTS orders_by_account_symbol
        ON orders (account_id, symbol, created_at_ns DESC, order_id DESC)""",
    """CREATE INDEX IF NOT EXISTS orders_by_account_status
        ON orders (account_id, status, created_at_ns DESC, order_id DESC)""",
    # Recovery and the release outbox scan only the few rows they need.
    "CREATE INDEX IF NOT EXISTS orders_pending ON orders (updated_at_ns) WHERE status IS NULL",
    """CREATE INDEX IF NOT EXISTS orders_release_due
        ON orders (updated_at_ns) WHERE release_state = 0 AND status IN (3, 4, 5)""",
    """CREATE TABLE IF NOT EXISTS fills (
        trade_id     TEXT NOT NULL,
        order_id     TEXT NOT NULL REFERENCES orders (order_id),
        price        INTEGER NOT NULL,
        quantity     INTEGER NOT NULL,
        aggressor    INTEGER NOT NULL,
        timestamp_ns INTEGER NOT NULL,
        risk_state   INTEGER NOT NULL DEFAULT 0,
        -- One row per side of a trade: recording a fill twice is a no-op.
        PRIMARY KEY (trade_id, order_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS fills_by_order ON fills (order_id, timestamp_ns)",
    "CREATE INDEX IF NOT EXISTS fills_risk_due ON fills (order_id) WHERE risk_state = 0",
    # The event log. `seq` is the rowid, so it is the table's own index: reading
    # after a cursor is a range scan. AUTOINCREMENT never hands out a seq twice,
    # whatever was deleted, so no cursor can take a new event for one it has seen.
    """CREATE TABLE IF NOT EXISTS order_events (
        seq            INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id     TEXT NOT NULL,
        type           INTEGER NOT NULL,
        -- The order right after the event: the orders row's columns as a JSON
        -- array (_order_row), decoded by the same code that reads orders rows.
        order_json     TEXT NOT NULL,
        -- The execution, for FILLED events (its order_id is the order's).
        trade_id       TEXT,
        fill_price     INTEGER,
        fill_quantity  INTEGER,
        fill_aggressor INTEGER,
        fill_ts_ns     INTEGER,
        created_at_ns  INTEGER NOT NULL
    )""",
    # Nothing reads the log by account (tailers read by seq and filter), and this
    # index cost every event insert a write at a random leaf: gone, from older
    # files too.
    "DROP INDEX IF EXISTS order_events_by_account",
    # Re-homing (rehoming.py): a symbol's working orders in time priority.
    """CREATE INDEX IF NOT EXISTS orders_working_by_symbol
        ON orders (symbol, created_at_ns, order_id) WHERE status IN (1, 2)""",
    # The lease on moving a symbol's orders between engines: one process at a time.
    """CREATE TABLE IF NOT EXISTS symbol_leases (
        symbol        TEXT PRIMARY KEY,
        holder        TEXT NOT NULL,
        expires_at_ns INTEGER NOT NULL
    ) WITHOUT ROWID""",
    # The engine a re-homed order was last submitted to, written with its booking.
    """CREATE TABLE IF NOT EXISTS order_homes (
        order_id TEXT PRIMARY KEY REFERENCES orders (order_id),
        engine   TEXT NOT NULL
    ) WITHOUT ROWID""",
)

_ORDER_COLUMNS = (
    "order_id, account_id, client_order_id, symbol, side, type, time_in_force, quantity, "
    "price, status, filled_quantity, filled_notional, canceled_quantity, reject_reason, "
    "error_code, created_at_ns, updated_at_ns"
)
_FILL_COLUMNS = "trade_id, order_id, price, quantity, aggressor, timestamp_ns"

_EVENT_COLUMNS = (
    "account_id, type, order_json, trade_id, fill_price, fill_quantity, fill_aggressor, "
    "fill_ts_ns, created_at_ns"
)

DEFAULT_BUSY_TIMEOUT_MS = 5_000
# Page size of a new file. A booking changes one entry in each of several indexes
# at random places (order ids, accounts), and a commit appends every page it
# dirtied to the WAL whole: 1 KiB pages write about half the bytes per order of
# the 4 KiB default (measured: 16 KiB against 31 KiB), for b-trees one level
# deeper. An existing file keeps the size it was created with.
NEW_FILE_PAGE_SIZE = 1024
# WAL bytes between automatic checkpoints: SQLite's default (1,000 pages) at its
# default page size. Counted in bytes, not pages, so that smaller pages do not
# checkpoint (copy back and fsync, on the event loop) more often per order.
WAL_CHECKPOINT_BYTES = 1000 * 4096


def _order_row(order: Order) -> tuple[object, ...]:
    spec = order.spec
    return (
        order.order_id,
        order.account_id,
        order.client_order_id,
        spec.symbol,
        int(spec.side),
        int(spec.type),
        int(spec.time_in_force),
        spec.quantity,
        spec.price,
        None if order.status is None else int(order.status),
        order.filled_quantity,
        order.filled_notional,
        order.canceled_quantity,
        order.reject_reason,
        order.error_code,
        order.created_at_ns,
        order.updated_at_ns,
    )


def _order_from_row(row: Sequence[Any]) -> Order:
    (order_id, account_id, client_order_id, symbol, side, type_, tif, quantity, price) = row[:9]
    (status, filled, notional, canceled, reason, code, created, updated) = row[9:17]
    spec = OrderSpec(symbol, Side(side), OrderType(type_), TimeInForce(tif), quantity, price)
    return Order(
        order_id,
        account_id,
        client_order_id,
        spec,
        created,
        updated,
        None if status is None else OrderStatus(status),
        filled,
        notional,
        canceled,
        reason,
        code,
    )


def _fill_from_row(row: Sequence[Any]) -> Fill:
    trade_id, order_id, price, quantity, aggressor, timestamp_ns = row
    return Fill(trade_id, order_id, price, quantity, bool(aggressor), timestamp_ns)


def _event_row(event: OrderEvent, now_ns: int) -> tuple[object, ...]:
    order_json = json.dumps(_order_row(event.order), separators=(",", ":"))
    fill = event.fill
    if fill is None:
        fill_columns: tuple[object, ...] = (None, None, None, None, None)
    else:
        fill_columns = (
            fill.trade_id,
            fill.price,
            fill.quantity,
            int(fill.aggressor),
            fill.timestamp_ns,
        )
    return (event.order.account_id, int(event.type), order_json, *fill_columns, now_ns)


def _event_from_row(row: Sequence[Any]) -> tuple[int, OrderEvent]:
    seq, type_, order_json, trade_id, price, quantity, aggressor, timestamp_ns = row
    order = _order_from_row(json.loads(order_json))
    fill = None
    if trade_id is not None:
        fill = Fill(trade_id, order.order_id, price, quantity, bool(aggressor), timestamp_ns)
    return seq, OrderEvent(OrderEventType(type_), order, fill)


class OrderStore:
    """Orders and fills in one SQLite file; see the module doc for the threading rule."""

    def __init__(self, path: Path | str, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # isolation_level=None: no implicit transactions; `transaction()` says where
        # they begin and end.
        self._db = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout_ms / 1000)
        self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        # Before anything is written; a no-op on a file that has pages already.
        self._db.execute(f"PRAGMA page_size = {NEW_FILE_PAGE_SIZE}")
        self._enable_wal(busy_timeout_ms / 1000)
        # NORMAL in WAL mode: a commit survives a process crash; only a power loss
        # can take back the last commits (never corrupting the file).
        self._db.execute("PRAGMA synchronous = NORMAL")
        page_size = int(self._db.execute("PRAGMA page_size").fetchone()[0])
        self._db.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_BYTES // page_size}")
        self._db.execute("PRAGMA foreign_keys = ON")
        with self.transaction():
            for statement in _SCHEMA:
                self._db.execute(statement)

    def close(self) -> None:
        self._db.close()

    def _enable_wal(self, timeout_seconds: float) -> None:
        """Switches the file to WAL. Switching takes the file alone for a moment, and
        SQLite answers a competing switch with "database is locked" at once, without
        its busy handler: processes opening a new file together (workers, instances
        on one host) retry here until the busy timeout instead."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            try:
                self._db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)  # start-up only: blocking the loop here costs nothing

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit of writes; commits on success, rolls back on any error."""
        if self._db.in_transaction:
            raise RuntimeError("OrderStore transactions do not nest; group the writes in one")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Writes inside a transaction() that are rolled back alone on error, the
        transaction going on (group_commit.py: one per placement of a group)."""
        if not self._db.in_transaction:
            raise RuntimeError("a savepoint belongs inside an OrderStore transaction")
        self._db.execute("SAVEPOINT grouped")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK TO grouped")
            self._db.execute("RELEASE grouped")
            raise
        self._db.execute("RELEASE grouped")

    # -- orders ------------------------------------------------------------------

    def insert(self, order: Order) -> Order:
        """Stores a new order; returns it, or the order already holding its key."""
        try:
            self._db.execute(
                f"INSERT INTO orders ({_ORDER_COLUMNS}) VALUES ({', '.join('?' * 17)})",
                _order_row(order),
            )
        except sqlite3.IntegrityError:
            existing = self.find(order.account_id, client_order_id=order.client_order_id)
            if existing is None:  # not the idempotency key: a real bug
                raise
            return existing
        return order

    def update(self, order: Order) -> None:
        """Writes an order's mutable fields (its identity and spec never change)."""
        self._db.execute(
            "UPDATE orders SET status = ?, filled_quantity = ?, filled_notional = ?, "
            "canceled_quantity = ?, reject_reason = ?, error_code = ?, updated_at_ns = ? "
            "WHERE order_id = ?",
            (
                None if order.status is None else int(order.status),
                order.filled_quantity,
                order.filled_notional,
                order.canceled_quantity,
                order.reject_reason,
                order.error_code,
                order.updated_at_ns,
                order.order_id,
            ),
        )

    def get(self, order_id: str) -> Order | None:
        row = self._db.execute(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE order_id = ?", (order_id,)
        ).fetchone()
        return None if row is None else _order_from_row(row)

    def find(
        self, account_id: str, *, order_id: str = "", client_order_id: str = ""
    ) -> Order | None:
        """One of the account's orders, by order_id or by client_order_id."""
        if order_id:
            where, key = "order_id = ?", order_id
        else:
            where, key = "client_order_id = ?", client_order_id
        row = self._db.execute(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE account_id = ? AND {where}",
            (account_id, key),
        ).fetchone()
        return None if row is None else _order_from_row(row)

    def page(
        self,
        account_id: str,
        *,
        symbol: str = "",
        statuses: Sequence[OrderStatus] = (),
        after: tuple[int, str] | None = None,
        limit: int,
    ) -> list[Order]:
        """The account's orders newest first, from just after `after`
        ((created_at_ns, order_id) of the previous page's last order)."""
        clauses: list[str] = ["account_id = ?"]
        params: list[Any] = [account_id]
        if symbol:
            clauses.append("symbol = ?")
            params.append(symbol)
        if statuses:
            clauses.append(f"status IN ({', '.join('?' * len(statuses))})")
            params += [int(s) for s in statuses]
        if after is not None:
            clauses.append("(created_at_ns < ? OR (created_at_ns = ? AND order_id < ?))")
            params += [after[0], after[0], after[1]]
        rows = self._db.execute(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE {' AND '.join(clauses)} "
            "ORDER BY created_at_ns DESC, order_id DESC LIMIT ?",
            (*params, limit),
        ).fetchall()
        return [_order_from_row(row) for row in rows]

    def pending(self, *, updated_before_ns: int, limit: int = 100) -> list[Order]:
        """Pending orders untouched since `updated_before_ns`, oldest first."""
        rows = self._db.execute(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE status IS NULL AND updated_at_ns < ? "
            "ORDER BY updated_at_ns LIMIT ?",
            (updated_before_ns, limit),
        ).fetchall()
        return [_order_from_row(row) for row in rows]

    # -- fills -------------------------------------------------------------------

    def add_fill(self, fill: Fill) -> bool:
        """Records a fill; False when this (trade_id, order_id) was recorded before."""
        cursor = self._db.execute(
            f"INSERT OR IGNORE INTO fills ({_FILL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
            (
                fill.trade_id,
                fill.order_id,
                fill.price,
                fill.quantity,
                int(fill.aggressor),
                fill.timestamp_ns,
            ),
        )
        return cursor.rowcount == 1

    def has_fill(self, fill: Fill) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM fills WHERE trade_id = ? AND order_id = ?",
            (fill.trade_id, fill.order_id),
        ).fetchone()
        return row is not None

    def fills(self, order_id: str, *, aggressor_only: bool = False) -> list[Fill]:
        """An order's fills in trade time order."""
        only = " AND aggressor = 1" if aggressor_only else ""
        rows = self._db.execute(
            f"SELECT {_FILL_COLUMNS} FROM fills WHERE order_id = ?{only} ORDER BY timestamp_ns",
            (order_id,),
        ).fetchall()
        return [_fill_from_row(row) for row in rows]

    # -- the risk outbox ---------------------------------------------------------

    def fills_due(self, limit: int = 500) -> list[Fill]:
        """Fills RiskService has not confirmed yet."""
        rows = self._db.execute(
            f"SELECT {_FILL_COLUMNS} FROM fills WHERE risk_state = 0 LIMIT ?", (limit,)
        ).fetchall()
        return [_fill_from_row(row) for row in rows]

    def mark_fill(self, fill: Fill, state: Outbox) -> None:
        self.mark_fills([(fill, state)])

    def mark_fills(self, marks: Iterable[tuple[Fill, Outbox]]) -> None:
        """Records what RiskService said about each fill: one prepared statement
        for all of them."""
        self._db.executemany(
            "UPDATE fills SET risk_state = ? WHERE trade_id = ? AND order_id = ?",
            [(int(state), fill.trade_id, fill.order_id) for fill, state in marks],
        )

    def releases_due(self, order_ids: Iterable[str] | None = None, limit: int = 500) -> list[Order]:
        """Settled orders whose reservation is still to be released, and none of
        whose fills is still to be applied (a fill must reach risk first)."""
        where = (
            "o.release_state = 0 AND o.status IN (3, 4, 5) "
            "AND o.filled_quantity + o.canceled_quantity = o.quantity "
            "AND NOT EXISTS (SELECT 1 FROM fills f WHERE f.order_id = o.order_id "
            "AND f.risk_state = 0)"
        )
        params: list[object] = []
        if order_ids is not None:
            ids = list(order_ids)
            if not ids:
                return []
            where += f" AND o.order_id IN ({', '.join('?' * len(ids))})"
            params += ids
        columns = ", ".join(f"o.{c.strip()}" for c in _ORDER_COLUMNS.split(","))
        rows = self._db.execute(
            f"SELECT {columns} FROM orders o WHERE {where} LIMIT ?", (*params, limit)
        ).fetchall()
        return [_order_from_row(row) for row in rows]

    def fully_applied(self, order_ids: Iterable[str]) -> set[str]:
        """Those of `order_ids` whose every fill RiskService confirmed (none due, none
        refused)."""
        ids = list(order_ids)
        if not ids:
            return set()
        rows = self._db.execute(
            f"SELECT order_id FROM orders o WHERE order_id IN ({', '.join('?' * len(ids))}) "
            "AND NOT EXISTS (SELECT 1 FROM fills f WHERE f.order_id = o.order_id "
            "AND f.risk_state != 1)",
            ids,
        ).fetchall()
        return {row[0] for row in rows}

    def mark_release(self, order_id: str, state: Outbox) -> None:
        self.mark_releases([(order_id, state)])

    def mark_releases(self, marks: Iterable[tuple[str, Outbox]]) -> None:
        """Records what RiskService said about each order's release."""
        self._db.executemany(
            "UPDATE orders SET release_state = ? WHERE order_id = ?",
            [(int(state), order_id) for order_id, state in marks],
        )

    def outbox_backlog(self) -> int:
        """Risk calls still due (fills, and releases of settled orders): for the retry loop."""
        fills = self._db.execute("SELECT count(*) FROM fills WHERE risk_state = 0").fetchone()[0]
        releases = self._db.execute(
            "SELECT count(*) FROM orders WHERE release_state = 0 AND status IN (3, 4, 5) "
            "AND filled_quantity + canceled_quantity = quantity"
        ).fetchone()[0]
        return int(fills) + int(releases)

    # -- re-homing ---------------------------------------------------------------

    def working(self, symbol: str, *, created_before_ns: int) -> list[Order]:
        """NEW and PARTIALLY_FILLED orders of `symbol` created before
        `created_before_ns`, oldest first: their time priority."""
        rows = self._db.execute(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE symbol = ? AND status IN (1, 2) "
            "AND created_at_ns < ? AND filled_quantity + canceled_quantity < quantity "
            "ORDER BY created_at_ns, order_id",
            (symbol, created_before_ns),
        ).fetchall()
        return [_order_from_row(row) for row in rows]

    def pending_count(self, symbol: str, *, created_in: tuple[int, int]) -> int:
        """Orders of `symbol` still being placed, created in [from, to) ns."""
        row = self._db.execute(
            "SELECT count(*) FROM orders WHERE status IS NULL AND symbol = ? "
            "AND created_at_ns >= ? AND created_at_ns < ?",
            (symbol, *created_in),
        ).fetchone()
        return int(row[0])

    def claim_symbol(self, symbol: str, holder: str, *, now_ns: int, lease_ns: int) -> bool:
        """Takes, or renews, `holder`'s lease on moving `symbol`'s orders; False
        while another holder's lease runs. BEGIN IMMEDIATE makes the check and the
        take one step across processes."""
        with self.transaction():
            cursor = self._db.execute(
                "INSERT INTO symbol_leases (symbol, holder, expires_at_ns) VALUES (?, ?, ?) "
                "ON CONFLICT (symbol) DO UPDATE SET holder = excluded.holder, "
                "expires_at_ns = excluded.expires_at_ns "
                "WHERE symbol_leases.holder = excluded.holder OR symbol_leases.expires_at_ns <= ?",
                (symbol, holder, now_ns + lease_ns, now_ns),
            )
        return cursor.rowcount == 1

    def release_symbol(self, symbol: str, holder: str) -> None:
        """Ends `holder`'s lease on `symbol` (if it still holds it)."""
        with self.transaction():
            self._db.execute(
                "DELETE FROM symbol_leases WHERE symbol = ? AND holder = ?", (symbol, holder)
            )

    def order_home(self, order_id: str) -> str | None:
        """The engine a re-homing last submitted the order to (None: never re-homed)."""
        row = self._db.execute(
            "SELECT engine FROM order_homes WHERE order_id = ?", (order_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def set_order_home(self, order_id: str, engine: str) -> None:
        self._db.execute(
            "INSERT INTO order_homes (order_id, engine) VALUES (?, ?) "
            "ON CONFLICT (order_id) DO UPDATE SET engine = excluded.engine",
            (order_id, engine),
        )

    def due_fill_quantity(self, order_id: str) -> int:
        """Quantity of the order's fills RiskService has not confirmed yet."""
        row = self._db.execute(
            "SELECT coalesce(sum(quantity), 0) FROM fills WHERE order_id = ? AND risk_state = 0",
            (order_id,),
        ).fetchone()
        return int(row[0])

    # -- the order event log -----------------------------------------------------

    def append_events(self, events: Iterable[OrderEvent], *, now_ns: int) -> None:
        """Appends `events` to the log, in order, inside the caller's transaction:
        the one that makes the change they report, so they commit (or vanish) with it."""
        if not self._db.in_transaction:
            raise RuntimeError(
                "append_events belongs in the transaction of the change the events report; "
                "call it inside store.transaction()"
            )
        self._db.executemany(
            f"INSERT INTO order_events ({_EVENT_COLUMNS}) VALUES ({', '.join('?' * 9)})",
            [_event_row(event, now_ns) for event in events],
        )

    def events_after(self, seq: int, limit: int) -> list[tuple[int, OrderEvent]]:
        """Up to `limit` events with a sequence above `seq`, oldest first."""
        rows = self._db.execute(
            "SELECT seq, type, order_json, trade_id, fill_price, fill_quantity, "
            "fill_aggressor, fill_ts_ns FROM order_events WHERE seq > ? ORDER BY seq LIMIT ?",
            (seq, limit),
        ).fetchall()
        return [_event_from_row(row) for row in rows]

    def last_event_seq(self) -> int:
        """The sequence of the newest event, 0 before the first (max of the rowid:
        one step down the table's b-tree)."""
        return int(self._db.execute("SELECT max(seq) FROM order_events").fetchone()[0] or 0)

    def trim_events(self, keep: int, *, limit: int = 10_000) -> int:
        """Deletes up to `limit` of the oldest events beyond the newest `keep`;
        returns how many. Retention is by count: the log only has to cover how far
        a tailer can lag (milliseconds), and a count bounds the file whatever the
        rate. Called repeatedly by the periodic trim (app.py), a short transaction
        each, so no writer waits behind one long delete."""
        if keep < 1:
            raise ValueError(f"the event log keeps at least 1 event, got {keep}")
        with self.transaction():
            cursor = self._db.execute(
                "DELETE FROM order_events WHERE seq IN (SELECT seq FROM order_events "
                "WHERE seq <= (SELECT max(seq) FROM order_events) - ? ORDER BY seq LIMIT ?)",
                (keep, limit),
            )
        return cursor.rowcount
