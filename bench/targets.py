"""The performance targets, each with the run's own figure beside its goal.

The goals are the mesh's speed targets (README, "Benchmarks"): the mesh's own cost
next to a bare grpc.aio call, PlaceOrder against the FastAPI variant, batched order
entry, and market-data fan-out. Each row is computed from the run's measurements,
so a target that a run did not measure says so rather than repeating an old figure.
"""

from __future__ import annotations

import re
from typing import Any

from bench.floors import REFERENCE_FLOORS

Figure = dict[str, Any]

MESH_SHARE_GOAL = 0.85
ENTRY_GOAL_ORDERS_PER_S = 50_000
FANOUT_GOAL = {"subscribers": 1_000, "trades_per_s": 1_000.0, "p99_ms": 50.0}

_FEEDER_RATE = re.compile(r"feeder (\d+(?:\.\d+)?) trades/s")


def _p99(m: Figure) -> float | None:
    return (m.get("latency_ms") or {}).get("p99")


def _failed(m: Figure) -> bool:
    return bool(m.get("errors")) or not m.get("requests", 1)


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "not met", None: "not measured"}[met]


def _closed_pair(
    figures: list[Figure], scenario: str, concurrency: int, batched: bool
) -> tuple[Figure, Figure] | None:
    """The gRPC and REST closed-loop figures of a scenario, Python clients, mTLS."""
    found: dict[str, Figure] = {}
    for m in figures:
        if (
            m["scenario"] == scenario
            and m["load"] == "closed"
            and m["concurrency"] == concurrency
            and (m.get("items_per_request", 1) > 1) == batched
            and m["driver"] in ("python-mesh", "python-http")
            and "mTLS" in m["variant"]
            and m.get("round") is None
        ):
            found.setdefault(m["transport"], m)
    if "grpc" in found and "rest" in found:
        return found["grpc"], found["rest"]
    return None


def _place_order_rows(figures: list[Figure]) -> list[list[str]]:
    rows = []
    levels = sorted(
        {
            m["concurrency"]
            for m in figures
            if m["scenario"] == "place_order" and m["load"] == "closed"
        }
    )
    for level in levels:
        pair = _closed_pair(figures, "place_order", level, batched=False)
        if pair is None:
            continue
        g, r = pair
        g_p99, r_p99 = _p99(g), _p99(r)
        met = (
            None
            if _failed(g) or _failed(r) or g_p99 is None or r_p99 is None
            else g["items_per_s"] >= r["items_per_s"] and g_p99 <= r_p99
        )
        rows.append(
            [
                f"PlaceOrder, 3 hops over mTLS, c{level}",
                "gRPC orders/s >= FastAPI's, at <= its p99",
                f"{g['items_per_s']:,.0f} vs {r['items_per_s']:,.0f}/s "
                f"({g['items_per_s'] / r['items_per_s']:.2f}x), p99 {g_p99:.1f} vs "
                f"{r_p99:.1f} ms"
                if r["items_per_s"] and g_p99 is not None and r_p99 is not None
                else "no figure",
                _verdict(met),
            ]
        )
    return rows


def _order_entry_rows(figures: list[Figure]) -> list[list[str]]:
    rows = []
    for m in figures:
        if m["scenario"] != "order_entry" or m["transport"] != "grpc":
            continue
        if m.get("items_per_request", 1) <= 1:
            continue
        pair = _closed_pair(figures, "order_entry", m["concurrency"], batched=True)
        rest = pair[1]["items_per_s"] if pair else None
        met = (
            None
            if _failed(m)
            else m["items_per_s"] >= ENTRY_GOAL_ORDERS_PER_S
            and (rest is None or m["items_per_s"] >= rest)
        )
        versus = f" vs REST batch {rest:,.0f}/s" if rest else ""
        rows.append(
            [
                f"Batched OrderEntry, {m['items_per_request']} per message, c{m['concurrency']}",
                f">= {ENTRY_GOAL_ORDERS_PER_S:,} orders/s and >= the REST batch endpoint",
                f"{m['items_per_s']:,.0f} orders/s{versus}",
                _verdict(met),
            ]
        )
    return rows


def _fanout_rows(figures: list[Figure]) -> list[list[str]]:
    rows = []
    for m in figures:
        if m["scenario"] != "fanout" or m["transport"] != "grpc":
            continue
        rate_match = _FEEDER_RATE.search(m.get("notes", ""))
        rate = float(rate_match.group(1)) if rate_match else None
        p99 = _p99(m)
        at_goal_size = (
            m["concurrency"] >= FANOUT_GOAL["subscribers"]
            and rate is not None
            and rate >= FANOUT_GOAL["trades_per_s"]
        )
        met = None if _failed(m) or p99 is None else at_goal_size and p99 <= FANOUT_GOAL["p99_ms"]
        rate_text = f"{rate:g} trades/s" if rate is not None else "unknown trade rate"
        rows.append(
            [
                f"StreamQuotes fan-out, {m['concurrency']} subscribers at {rate_text}",
                f"{FANOUT_GOAL['subscribers']:,} subscribers at "
                f"{FANOUT_GOAL['trades_per_s']:,.0f} trades/s, p99 lag <= "
                f"{FANOUT_GOAL['p99_ms']:g} ms",
                f"p99 lag {p99:.1f} ms" if p99 is not None else "no figure",
                _verdict(met) + ("" if at_goal_size else " (smaller than the goal)"),
            ]
        )
    return rows


def _mesh_rows(figures: list[Figure]) -> list[list[str]]:
    """Rows for the mesh's own cost, from the layers scenario's summary figures:
    those whose `mesh_share` compares the mesh with a bare call at the same
    transport security (TLS and tracing are counted separately)."""
    rows = []
    for m in figures:
        share = m.get("mesh_share")
        if m["scenario"] != "layers" or share is None:
            continue
        spread = m.get("mesh_share_range")
        spread_text = f" (range {spread[0]:.0%}-{spread[1]:.0%})" if spread else ""
        rows.append(
            [
                f"Mesh overhead, {m['variant']}",
                f">= {MESH_SHARE_GOAL:.0%} of a bare grpc.aio call's throughput",
                f"{share:.0%}{spread_text}",
                _verdict(None if _failed(m) else share >= MESH_SHARE_GOAL),
            ]
        )
    return rows


def _floor_line(figures: list[Figure]) -> str | None:
    floors = {
        m["transport"]: m
        for m in figures
        if m["scenario"] == "floor" and m["load"] == "closed" and m["concurrency"] == 16
        and m["driver"] in ("h2load", "wrk", "ghz") and m["variant"] in REFERENCE_FLOORS
    }  # fmt: skip
    if {"grpc", "rest"} <= floors.keys():
        g, r = floors["grpc"], floors["rest"]
        return (
            f"Floors beside them (bare echo, c16, C generators): grpc.aio "
            f"{g['items_per_s']:,.0f}/s, aiohttp {r['items_per_s']:,.0f}/s."
        )
    return None


def targets_table(figures: list[Figure]) -> list[str]:
    """The targets section's lines (empty when the run measured none of them)."""
    rows = [
        *_mesh_rows(figures),
        *_place_order_rows(figures),
        *_order_entry_rows(figures),
        *_fanout_rows(figures),
    ]
    if not rows:
        return []
    lines = ["| target | goal | this run | verdict |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    floor = _floor_line(figures)
    return lines + ([f"\n{floor}"] if floor else [])
