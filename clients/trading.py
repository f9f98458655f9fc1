"""The trademesh services as a client sees them: registry names, health names,
and how to call each one.

Stateful services are reached by consistent hashing on the key that owns their
state (RiskService by account, MatchingEngine by symbol), so one account's
reservations and one symbol's book each live on one instance; the others
balance by power of two choices over outstanding calls and latency.
"""

from __future__ import annotations

from typing import Any

from clients.policy import ServicePolicy


def _account(request: Any) -> str | None:
    return getattr(request, "account_id", None) or None


def _symbol(request: Any) -> str | None:
    # Requests without one symbol (StreamEvents) go to any engine; callers that
    # need every engine address them one by one.
    return getattr(request, "symbol", None) or None


ORDERS = ServicePolicy(service="orders", health_service="trading.v1.OrderService")
RISK = ServicePolicy(
    service="risk", health_service="trading.v1.RiskService", balancer="ring_hash", key_of=_account
)
MATCHING = ServicePolicy(
    service="matching",
    health_service="trading.v1.MatchingEngine",
    balancer="ring_hash",
    key_of=_symbol,
)
MARKETDATA = ServicePolicy(service="marketdata", health_service="trading.v1.MarketDataService")

POLICIES = {policy.service: policy for policy in (ORDERS, RISK, MATCHING, MARKETDATA)}

# Where the first instance of each service listens by default (the second one 10
# higher), and the local etcd `make run` starts.
DEFAULT_PORTS = {"orders": 50051, "risk": 50052, "matching": 50053, "marketdata": 50054}
DEFAULT_ETCD = "127.0.0.1:2379"
