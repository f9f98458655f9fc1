"""The requests every driver sends, identical in content for both transports.

Orders are deterministic and realistic: many accounts, a few symbols, both
sides, priced so each sell crosses the buy resting before it (trades happen on
every other order), each with a client_order_id unique to its run, so no call
turns into an idempotent replay. The gRPC and REST forms of one order carry the
same fields: protobuf for gRPC, the contract's JSON (proto field names, enum
value names) for REST.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from trading.v1 import common_pb2, marketdata_pb2, orders_pb2

SYMBOLS = ("AAPL", "MSFT", "GOOG", "AMZN")
MID_PRICE = 18_900  # cents, inside every default instrument's price band
QUOTE_SYMBOL = "AAPL"


@dataclass(frozen=True, slots=True)
class OrderFlow:
    """Order n of a run: account, symbol and side rotate so the flow crosses.

    Within one symbol orders alternate buy (at MID + 1) then sell (at MID - 1):
    the sell crosses the resting buy. Account rotation is offset from the side,
    so every account both buys and sells and none runs out of buying power.
    """

    tag: str  # unique per run and driver: client_order_ids never repeat across runs
    accounts: int = 200
    quantity: int = 1

    def fields(self, n: int) -> dict[str, Any]:
        symbol = SYMBOLS[n % len(SYMBOLS)]
        # Flips every full account cycle, so each account buys in one cycle and
        # sells in the next (the cycle is a multiple of len(SYMBOLS): within a
        # symbol, sides keep alternating except once per cycle).
        buy = (n // len(SYMBOLS) + n // (2 * self.accounts)) % 2 == 0
        return {
            "account_id": f"acct-{(n // 2) % self.accounts:04d}",
            "client_order_id": f"{self.tag}-{n}",
            "symbol": symbol,
            "side": "SIDE_BUY" if buy else "SIDE_SELL",
            "type": "ORDER_TYPE_LIMIT",
            "time_in_force": "TIME_IN_FORCE_GTC",
            "quantity": self.quantity,
            "price": MID_PRICE + 1 if buy else MID_PRICE - 1,
        }

    def proto(self, n: int) -> orders_pb2.PlaceOrderRequest:
        f = self.fields(n)
        return orders_pb2.PlaceOrderRequest(
            account_id=f["account_id"],
            client_order_id=f["client_order_id"],
            symbol=f["symbol"],
            side=common_pb2.Side.Value(f["side"]),
            type=common_pb2.OrderType.Value(f["type"]),
            time_in_force=common_pb2.TimeInForce.Value(f["time_in_force"]),
            quantity=f["quantity"],
            price=f["price"],
        )

    def json(self, n: int) -> bytes:
        return orjson.dumps(self.fields(n))


def grpc_frame(message: bytes) -> bytes:
    """One length-prefixed gRPC message (uncompressed): what h2load posts."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def quote_request() -> marketdata_pb2.GetQuoteRequest:
    return marketdata_pb2.GetQuoteRequest(symbol=QUOTE_SYMBOL)


# A fixed order for the C load generators, which post one body over and over:
# the first call places it, every later one is an idempotent replay.
def replay_order_fields(tag: str) -> dict[str, Any]:
    return OrderFlow(tag).fields(0)
