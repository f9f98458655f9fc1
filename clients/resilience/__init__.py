"""Client resilience primitives: retry budget, adaptive throttling, outlier ejection,
deadlines. Pure algorithms over an injectable clock; the mesh channel calls them."""

from __future__ import annotations

from clients.resilience.breaker import AdaptiveThrottle
from clients.resilience.deadline import DEFAULT_TIMEOUTS, Deadline, MethodTimeouts, remaining
from clients.resilience.outlier import OutlierDetector
from clients.resilience.retry_budget import RetryBudget

__all__ = [
    "DEFAULT_TIMEOUTS",
    "AdaptiveThrottle",
    "Deadline",
    "MethodTimeouts",
    "OutlierDetector",
    "RetryBudget",
    "remaining",
]
