"""Where a process's CPU went, from a py-spy speedscope profile (`py-spy record
--format speedscope`): shares by layer and the top functions, as `py-spy top` shows
them (self: the sample's innermost frame; total: anywhere on the stack).

Layers: a sample with OpenTelemetry code anywhere on its stack is the
instrumentation's (its wrappers hold the call they trace). Any other sample
belongs to the innermost frame that matches a rule below; time inside C code
(grpc's Cython core, sqlite3, protobuf's upb) shows under the Python frame that
called it, which is how a rule like "store.py -> SQLite" accounts for it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

OTEL = "OTel instrumentation"
# grpc core's completion-queue poller: HTTP/2, TLS and socket I/O off the loop.
POLLER_THREAD = "_poll_wrapper"
GRPC_CORE_IO = "grpc core I/O thread"
# (path fragment, layer), tried innermost frame first.
RULES: tuple[tuple[str, str], ...] = (
    ("services/orders/store.py", "SQLite (order store)"),
    ("sqlite3", "SQLite (order store)"),
    ("google/protobuf", "protobuf"),
    ("_pb2", "protobuf"),
    ("services/orders/downstream.py", "adapters (proto <-> domain)"),
    ("services/orders/grpc_adapter.py", "adapters (proto <-> domain)"),
    ("services/risk/grpc_adapter.py", "adapters (proto <-> domain)"),
    ("services/matching/grpc_adapter.py", "adapters (proto <-> domain)"),
    ("services/runtime/status.py", "adapters (proto <-> domain)"),
    ("services/runtime/interceptors/", "server interceptors"),
    ("prometheus_client", "server interceptors"),
    ("clients/", "mesh channel (clients/)"),
    ("services/orders/", "saga and order domain"),
    ("services/risk/", "risk domain"),
    ("services/matching/", "matching domain"),
    ("services/marketdata/", "market data domain"),
    ("services/", "shared domain (model, errors)"),
    ("logging/", "logging"),
    ("grpc/", "grpc.aio (Python + Cython core)"),
    ("grpc_health", "grpc.aio (Python + Cython core)"),
    ("asyncio/", "asyncio event loop"),
    ("uvloop", "asyncio event loop"),
)
OTHER = "other"


def _layer(stack: list[dict[str, Any]]) -> str:
    if any("opentelemetry" in (frame.get("file") or "") for frame in stack):
        return OTEL
    for frame in reversed(stack):  # innermost first
        path = frame.get("file") or ""
        for fragment, layer in RULES:
            if fragment in path:
                return layer
    return OTHER


def _label(frame: dict[str, Any]) -> str:
    path = frame.get("file") or "?"
    for anchor in ("site-packages/", "python3.11/", "/work/main/"):
        if anchor in path:
            path = path.split(anchor, 1)[1]
            break
    return f"{frame.get('name')} ({path})"


def breakdown(path: Path, *, top: int = 20) -> dict[str, Any]:
    """Shares (%) by layer and the `top` functions by self and total time."""
    data = json.loads(path.read_text())
    frames = data["shared"]["frames"]
    layers: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for profile in data["profiles"]:
        poller = POLLER_THREAD in profile["name"]
        for stack_ids, weight in zip(profile["samples"], profile["weights"], strict=True):
            stack = [frames[i] for i in stack_ids]
            if not stack:
                continue
            samples += 1
            layers[GRPC_CORE_IO if poller else _layer(stack)] += weight
            own[_label(stack[-1])] += weight
            for label in {_label(frame) for frame in stack}:
                total[label] += weight
    seconds = sum(layers.values()) or 1.0

    def pct(counter: Counter[str], n: int | None) -> dict[str, float]:
        return {k: round(100 * v / seconds, 1) for k, v in counter.most_common(n)}

    return {
        "samples": samples,
        "sampled_cpu_s": round(seconds, 3),
        "layers_pct": pct(layers, None),
        "top_self_pct": pct(own, top),
        "top_total_pct": pct(total, top),
    }


if __name__ == "__main__":
    import sys

    for name in sys.argv[1:]:
        print(name, json.dumps(breakdown(Path(name)), indent=2))
