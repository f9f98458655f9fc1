"""GetOrder and ListOrders over the store: request validation, lookups, paging."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.errors import NotFound, Violations
from services.instruments import InstrumentCatalog
from services.model import OrderStatus, check_id
from services.orders.lifecycle import Order
from services.orders.paging import decode_page_token, encode_page_token, filters_digest
from services.orders.store import OrderStore

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class OrderPage:
    orders: tuple[Order, ...]
    next_page_token: str  # empty on the last page


def get_order(
    store: OrderStore, account_id: str, *, order_id: str = "", client_order_id: str = ""
) -> Order:
    """One of the account's orders. NotFound for another account's order too,
    so an order id reveals nothing about accounts it does not belong to."""
    violations = Violations()
    check_id(violations, "account_id", account_id)
    if order_id:
        check_id(violations, "order_id", order_id)
    elif client_order_id:
        check_id(violations, "client_order_id", client_order_id)
    else:
        violations.add("order_id", "is required: set order_id or client_order_id")
    violations.raise_if_any()
    order = store.find(account_id, order_id=order_id, client_order_id=client_order_id)
    if order is None:
        ref = f"order {order_id}" if order_id else f"client_order_id {client_order_id}"
        raise NotFound(f"account {account_id} has no {ref}; ListOrders shows the account's orders")
    return order


def list_orders(
    store: OrderStore,
    catalog: InstrumentCatalog,
    account_id: str,
    *,
    symbol: str = "",
    statuses: Sequence[int] = (),
    page_size: int = 0,
    page_token: str = "",
) -> OrderPage:
    """One page of the account's orders, newest first."""
    violations = Violations()
    check_id(violations, "account_id", account_id)
    if symbol and symbol not in catalog:
        violations.add("symbol", catalog.unknown_symbol_message(symbol))
    wanted: set[OrderStatus] = set()
    for i, status in enumerate(statuses):
        if status in OrderStatus._value2member_map_:
            wanted.add(OrderStatus(status))
        else:
            violations.add(
                f"statuses[{i}]", "must be an ORDER_STATUS_ value other than UNSPECIFIED"
            )
    if page_size == 0:
        page_size = DEFAULT_PAGE_SIZE
    elif not 1 <= page_size <= MAX_PAGE_SIZE:
        violations.add("page_size", f"must be 1 to {MAX_PAGE_SIZE} (or 0 for {DEFAULT_PAGE_SIZE})")
    filters = filters_digest(account_id, symbol, wanted)
    after = None
    if page_token:
        after = decode_page_token(page_token, filters, violations)
    violations.raise_if_any()
    rows = store.page(
        account_id,
        symbol=symbol,
        statuses=sorted(wanted),
        after=after,
        limit=page_size + 1,
    )
    token = ""
    if len(rows) > page_size:
        last = rows[page_size - 1]
        token = encode_page_token(last.created_at_ns, last.order_id, filters)
    return OrderPage(tuple(rows[:page_size]), token)
