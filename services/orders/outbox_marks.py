"""The risk outbox's marks (fill applied, reservation released), written by the
settlements that resume together in one transaction.

A batched Settle call (risk_batches.py) answers many settlements at once, and each
then records what RiskService confirmed. A transaction of its own each would make
BEGIN and COMMIT most of the settlement's store cost, so the marks of every
settlement that resumes in the same event loop turn are written together, in one
transaction at the end of that turn. Deferring a mark is safe: until it commits
the call stays due, and a repeat of it is idempotent at RiskService.
"""

from __future__ import annotations

import asyncio

from services.orders.lifecycle import Fill
from services.orders.store import OrderStore, Outbox


class OutboxMarks:
    """Group commit of outbox marks within one event loop turn."""

    def __init__(self, store: OrderStore) -> None:
        self._store = store
        self._fills: list[tuple[Fill, Outbox]] = []
        self._releases: list[tuple[str, Outbox]] = []
        self._written: asyncio.Future[None] | None = None
        self.transactions = 0  # for tests and profiles

    async def write(
        self, fills: list[tuple[Fill, Outbox]], releases: list[tuple[str, Outbox]]
    ) -> None:
        """Records the marks; returns once they are committed (raises if that failed)."""
        if not fills and not releases:
            return
        self._fills += fills
        self._releases += releases
        written = self._written
        if written is None:
            loop = asyncio.get_running_loop()
            written = self._written = loop.create_future()
            # call_soon runs after every callback already due in this turn: the
            # settlements woken by the same answer add their marks first.
            loop.call_soon(self._commit)
        # Shielded: one caller giving up must not cancel the others' commit.
        await asyncio.shield(written)

    def _commit(self) -> None:
        written, self._written = self._written, None
        fills, self._fills = self._fills, []
        releases, self._releases = self._releases, []
        assert written is not None
        try:
            with self._store.transaction():
                if fills:
                    self._store.mark_fills(fills)
                if releases:
                    self._store.mark_releases(releases)
        except Exception as exc:  # the marks stay due: the outbox sends them again
            written.set_exception(exc)
            written.exception()  # retrieved here too, should every waiter be gone
            return
        self.transactions += 1
        written.set_result(None)
