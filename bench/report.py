"""The run's report: report.md (tables and ratios) and PNG plots, from results.json.

python -m bench.report bench/results/example   # rewrites report.md and the PNGs
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

from bench.floors import REFERENCE_FLOORS
from bench.measurement import GENERATOR_BOUND_SHARE, generator_share
from bench.targets import targets_table

SCENARIO_ORDER = (
    "floor", "get_quote", "place_order", "order_entry", "fanout", "fanout_feeder", "layers",
)  # fmt: skip
SCENARIO_TITLES = {
    "floor": "Floors: bare grpc.aio vs bare aiohttp echo (GetQuote-shaped, no domain code)"
    " (and bare pygrpc-native, where installed)",
    "get_quote": "GetQuote: one hop to MarketDataService (plaintext mesh)",
    "place_order": "PlaceOrder: three hops (orders -> risk -> matching)",
    "order_entry": "High-rate order entry: batches per message",
    "fanout": "Market-data fan-out: delivery lag to N subscribers",
    "fanout_feeder": "Fan-out feeder: the PlaceOrder load behind the fan-out",
    "layers": "Mesh layers (bench/layers.py): each layer's cost, repeated rounds",
    "costs": "mTLS and telemetry costs: PlaceOrder, repeated on/off rounds",
}
Figure = dict[str, Any]

# Marks on a figure, or on a ratio computed from it: such a number is not clean.
ERRORS, GENERATOR_BOUND = "†", "‡"
FOOTNOTES = (
    f"{ERRORS} from a figure with errors (failed calls, or open-loop slots dropped at the "
    "in-flight cap) or with no call completed in its window: it measures a failing run, "
    "not the transport.",
    f"{GENERATOR_BOUND} from a generator-bound figure (load generator above "
    f"{GENERATOR_BOUND_SHARE:.0%} of a core): it measures the client as much as the server.",
)


def _family(driver: str) -> str:
    """Drivers that play the same role on each side."""
    if driver in ("h2load", "ghz", "wrk"):
        return "C generator"
    if driver.startswith("python"):
        return "Python client"
    return driver


def _setup(variant: str) -> str:
    """A deployment's variant without its transport's stack name. Only the
    transports' own floors are "floor" (they pair); another bare server keeps its
    name, so it pairs with nothing."""
    if variant.startswith("bare"):
        return "floor" if variant in REFERENCE_FLOORS else variant
    return variant.split(", ", 1)[1] if ", " in variant else variant


def _load(m: Figure) -> str:
    if m["scenario"] == "fanout":
        return f"{m['concurrency']} subs"
    if m["load"] == "open":
        return f"open {m['target_rate']:,.0f}/s"
    return f"c{m['concurrency']}"


def _server_us(m: Figure) -> float | None:
    cpu = sum(m.get("server_cpu_s", {}).values())
    return cpu / m["requests"] * 1e6 if m["requests"] and cpu else None


def _generator(m: Figure) -> str:
    cpu = m.get("generator_cpu_s")
    if cpu is None or not m["duration_s"]:
        return "-"
    share = cpu / m["duration_s"]
    bound = GENERATOR_BOUND if share > GENERATOR_BOUND_SHARE else ""
    return _marked(f"{cpu:.1f} s ({share:.0%})", bound)


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _loads(values: Sequence[float] | None) -> str:
    return "/".join(f"{v:.1f}" for v in values) if values else "-"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "-"
    return f"{a / b:.2f}x"


def marks(*figures: Figure | None) -> str:
    """The marks `figures` earn together: errors, generator-bound."""
    found = set()
    for m in figures:
        if m is None:
            continue
        if m["errors"] or not m["requests"]:  # nothing completed in the window is no figure
            found.add(ERRORS)
        share = generator_share(m.get("generator_cpu_s"), m["duration_s"])
        if share is not None and share > GENERATOR_BOUND_SHARE:
            found.add(GENERATOR_BOUND)
    return "".join(mark for mark in (ERRORS, GENERATOR_BOUND) if mark in found)


def _marked(text: str, mark: str) -> str:
    return f"{text} {mark}" if mark and text != "-" else text


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def scenario_table(figures: list[Figure]) -> list[str]:
    header = (
        "transport", "variant", "driver", "load", "req/s", "items/s", "p50 ms", "p90 ms",
        "p99 ms", "p99.9 ms", "errors", "server CPU µs/req", "generator CPU", "notes",
    )  # fmt: skip
    rows = []
    for m in figures:
        lat = m["latency_ms"]
        items = _num(m["items_per_s"]) if m["items_per_request"] > 1 else ""
        rows.append(
            (
                m["transport"], m["variant"], m["driver"], _load(m), _num(m["throughput_rps"]),
                items, _ms(lat.get("p50")), _ms(lat.get("p90")), _ms(lat.get("p99")),
                _ms(lat.get("p99.9")), _marked(str(m["errors"]), ERRORS if m["errors"] else ""),
                _num(_server_us(m)), _generator(m),
                m.get("notes", ""),
            )
        )  # fmt: skip
    return _table(header, rows)


def _pair_key(m: Figure) -> tuple[Any, ...]:
    # Open loops pair at the same offered rate; closed loops at the same concurrency.
    load: Any = m["target_rate"] or m["concurrency"]  # fan-out: subscribers
    # order_entry: batches pair with batches, one order per message with single POSTs.
    return (
        m["scenario"],
        _setup(m["variant"]),
        _family(m["driver"]),
        m["load"],
        load,
        m["items_per_request"],
    )


def _floors(figures: list[Figure]) -> dict[tuple[Any, ...], Figure]:
    """Each transport's own floor (bare grpc.aio, bare aiohttp) by driver role and load."""
    return {
        (m["transport"], _family(m["driver"]), m["concurrency"]): m
        for m in figures
        if m["scenario"] == "floor" and _setup(m["variant"]) == "floor"
    }


def other_floors_table(figures: list[Figure]) -> list[str]:
    """Bare servers beside their transport's floor (pygrpc-native beside grpc.aio),
    same driver and load; a line saying why when the run has none."""
    others = [m for m in figures if m["scenario"] == "floor" and _setup(m["variant"]) != "floor"]
    if not others:
        return [
            "No bare pygrpc-native floor in this run: it is measured only where the optional "
            "pygrpc-native is installed (`pip install -e '.[native]'`)."
        ]
    floors = _floors(figures)
    rows = []
    for m in others:
        floor = floors.get((m["transport"], _family(m["driver"]), m["concurrency"]))
        if floor is None or floor["driver"] != m["driver"]:
            continue
        mark = marks(m, floor)
        rows.append(
            (
                m["variant"], floor["variant"], m["driver"], _load(m),
                _num(m["throughput_rps"]), _num(floor["throughput_rps"]),
                _marked(_ratio(m["throughput_rps"], floor["throughput_rps"]), mark),
                _num(_server_us(m)), _num(_server_us(floor)),
                _marked(_ratio(_server_us(m), _server_us(floor)), mark),
            )
        )  # fmt: skip
    header = (
        "variant", "vs", "driver", "load", "req/s", "vs req/s", "throughput / vs",
        "server CPU µs/req", "vs server CPU µs/req", "server CPU per call / vs",
    )  # fmt: skip
    return [
        "Other bare gRPC servers beside the gRPC floor, same driver and load (REST is "
        "compared with the gRPC floor only):",
        "",
        *_table(header, rows),
    ]


def _of_floor(m: Figure, floors: dict[tuple[Any, ...], Figure]) -> str:
    """A closed-loop figure's throughput as a share of its transport's floor."""
    if m["scenario"] == "floor" or m["load"] != "closed":
        return "-"
    floor = floors.get((m["transport"], _family(m["driver"]), m["concurrency"]))
    if floor is None or not floor["throughput_rps"]:
        return "-"
    return _marked(f"{m['throughput_rps'] / floor['throughput_rps']:.0%}", marks(m, floor))


def pairs(figures: list[Figure]) -> list[tuple[Figure, Figure]]:
    """(gRPC, REST) figures of the same scenario, setup, driver role and load."""
    by_key: dict[tuple[Any, ...], dict[str, Figure]] = defaultdict(dict)
    for m in figures:
        if m["scenario"] in ("layers", "fanout_feeder", "costs"):
            continue
        by_key[_pair_key(m)][m["transport"]] = m
    return [(p["grpc"], p["rest"]) for p in by_key.values() if "grpc" in p and "rest" in p]


def transport_ratios(figures: list[Figure]) -> list[str]:
    floors = _floors(figures)
    rows = []
    for g, r in pairs(figures):
        mark = marks(g, r)
        is_open = g["load"] == "open" and g["target_rate"] is not None
        # An open loop's throughput is the offered rate: only its latency compares.
        throughput = "-" if is_open else _marked(_ratio(g["items_per_s"], r["items_per_s"]), mark)
        load = f"open {g['target_rate']:,.0f}/s, both" if is_open else _load(g)
        rows.append(
            (
                g["scenario"], _setup(g["variant"]), f"{g['driver']} / {r['driver']}", load,
                _num(g["items_per_s"]), _num(r["items_per_s"]), throughput,
                _ms(g["latency_ms"].get("p99")), _ms(r["latency_ms"].get("p99")),
                _marked(_ratio(g["latency_ms"].get("p99"), r["latency_ms"].get("p99")), mark),
                _marked(_ratio(_server_us(g), _server_us(r)), mark),
                _of_floor(g, floors), _of_floor(r, floors),
            )
        )  # fmt: skip
    header = (
        "scenario", "setup", "drivers", "load", "gRPC items/s", "REST items/s",
        "gRPC/REST throughput", "gRPC p99 ms", "REST p99 ms", "gRPC/REST p99",
        "gRPC/REST server CPU per call", "gRPC of its floor", "REST of its floor",
    )  # fmt: skip
    return _table(header, rows)


# -- costs: repeated on/off rounds ---------------------------------------------------------

# switch -> the setup of its "off" deployment (the "on" one is "mTLS").
COST_SWITCHES = {"mTLS": "plaintext", "telemetry": "mTLS, telemetry off"}


@dataclass(frozen=True)
class Cost:
    """One switch on one transport over N rounds: the on and off figure of each."""

    transport: str
    switch: str
    on: list[Figure]
    off: list[Figure]

    def ratios(self, value: Callable[[Figure], float | None]) -> list[float]:
        out = []
        for a, b in zip(self.on, self.off, strict=True):
            x, y = value(a), value(b)
            if x and y:
                out.append(x / y)
        return out

    @property
    def mark(self) -> str:
        return marks(*self.on, *self.off)


def costs(figures: list[Figure]) -> list[Cost]:
    rounds: dict[tuple[str, int], dict[str, Figure]] = defaultdict(dict)
    for m in figures:
        if m["scenario"] == "costs" and m.get("round") is not None:
            rounds[(m["transport"], m["round"])][_setup(m["variant"])] = m
    found = []
    for transport in ("grpc", "rest"):
        for switch, off in COST_SWITCHES.items():
            done = [
                sides
                for (t, _r), sides in sorted(rounds.items())
                if t == transport and "mTLS" in sides and off in sides
            ]
            if done:
                on_side = [sides["mTLS"] for sides in done]
                off_side = [sides[off] for sides in done]
                found.append(Cost(transport, switch, on_side, off_side))
    return found


def _throughput(m: Figure) -> float | None:
    return m["throughput_rps"]


def _p99(m: Figure) -> float | None:
    return m["latency_ms"].get("p99")


def _spread(values: list[float], mark: str = "") -> str:
    """Median (min-max) of ratios."""
    if not values:
        return "-"
    text = f"{median(values):.2f}x"
    if len(values) > 1:
        text += f" ({min(values):.2f}-{max(values):.2f})"
    return _marked(text, mark)


def costs_table(figures: list[Figure]) -> list[str]:
    rows = []
    for c in costs(figures):
        rows.append(
            (
                c.transport, f"{c.switch} on / off", c.on[0]["driver"],
                f"c{c.on[0]['concurrency']}", str(len(c.on)),
                _num(median(m["throughput_rps"] for m in c.on)),
                _num(median(m["throughput_rps"] for m in c.off)),
                _spread(c.ratios(_throughput), c.mark), _spread(c.ratios(_server_us), c.mark),
                _spread(c.ratios(_p99), c.mark),
            )
        )  # fmt: skip
    header = (
        "transport", "switch", "driver", "load", "rounds", "req/s on (median)",
        "req/s off (median)", "throughput on/off, median (range)",
        "server CPU per call on/off", "p99 on/off",
    )  # fmt: skip
    return _table(header, rows)


# -- layers: each variant against its baseline over back-to-back rounds -------------------


def layer_summaries(figures: list[Figure]) -> list[Figure]:
    """bench/layers.py's per-variant summaries (a run before rounds has none)."""
    return [m for m in figures if m["scenario"] == "layers" and m.get("rounds")]


def _key(variant: str | None) -> str:
    """ "(c)" of "(c) plaintext: MeshServer + MeshChannel"."""
    return (variant or "").split(" ", 1)[0]


def _share(value: float | None, spread: Sequence[float] | None, mark: str = "") -> str:
    """A median share with its range: 93% (88-97%)."""
    if value is None:
        return "-"
    text = f"{value:.0%}"
    if spread:
        text += f" ({spread[0] * 100:.0f}-{spread[1]:.0%})"
    return _marked(text, mark)


def _per_call_us(cpu_s: float | None, m: Figure) -> float | None:
    return cpu_s / m["requests"] * 1e6 if cpu_s and m["requests"] else None


def layers_table(figures: list[Figure]) -> list[str]:
    """The summaries (one row per variant), then each interceptor alone."""
    summaries = layer_summaries(figures)
    if not summaries:  # a run before rounds: one figure per variant
        return scenario_table(figures)
    rows = []
    for m in summaries:
        mark = marks(m)
        cpu = m.get("cpu_ratio")
        spread = m.get("cpu_ratio_range")
        rows.append(
            (
                m["variant"], _key(m.get("baseline")) or "-", str(m["rounds"]),
                _num(m["throughput_rps"]), _share(m.get("share"), m.get("share_range"), mark),
                _marked(f"{cpu:.2f}x ({spread[0]:.2f}-{spread[1]:.2f})", mark)
                if cpu and spread else "-",
                _num(_per_call_us(sum(m["server_cpu_s"].values()), m)),
                _num(_per_call_us(m.get("generator_cpu_s"), m)),
                _ms(m["latency_ms"].get("p50")), _ms(_p99(m)), _marked(str(m["errors"]),
                ERRORS if m["errors"] else ""),
            )
        )  # fmt: skip
    header = (
        "variant", "vs", "rounds", "req/s (median)", "throughput / vs, median (range)",
        "CPU per call / vs (client + server)", "server CPU µs/call", "client CPU µs/call",
        "p50 ms", "p99 ms", "errors",
    )  # fmt: skip
    lines = _table(header, rows)
    alone = [m for m in figures if m["scenario"] == "layers" and m["driver"] == "in-process"]
    if alone:
        lines += ["", *_table(("in-process", "adds µs per call"), [
            (m["variant"].removeprefix("interceptor: "), f"{m['latency_ms']['mean'] * 1000:.2f}")
            for m in alone
        ])]  # fmt: skip
    return lines


def _mesh_overhead(m: Figure) -> str:
    """ "(c) plaintext 93% (88-97%) of (a), CPU per call 1.04x"."""
    security = m["variant"].split(" ", 1)[1].split(":")[0]
    text = (
        f"{_key(m['variant'])} {security} "
        f"{_share(m['mesh_share'], m.get('mesh_share_range'), marks(m))} of {_key(m['baseline'])}"
    )
    cpu = m.get("cpu_ratio")
    return text + (f", CPU per call {cpu:.2f}x" if cpu else "")


def _layers_headlines(figures: list[Figure]) -> list[str]:
    summaries = layer_summaries(figures)
    if not summaries:  # a run before rounds: shares of (a) from one pass
        layered = [m for m in figures if m["scenario"] == "layers" and m["driver"] == "python-grpc"]
        if not layered or not layered[0]["throughput_rps"]:
            return []
        base = layered[0]["throughput_rps"]
        shares = ", ".join(
            _marked(f"{_key(m['variant'])} {m['throughput_rps'] / base:.0%}", marks(m))
            for m in layered[1:]
        )
        return [f"Mesh layers, throughput as a share of (a) bare grpc.aio: {shares}"]
    rounds = max(m["rounds"] for m in summaries)
    mesh = [m for m in summaries if m.get("mesh_share") is not None]
    others = [m for m in summaries if m.get("share") is not None and m not in mesh]
    lines = []
    if mesh:
        lines.append(
            "Mesh overhead (MeshServer + MeshChannel against bare grpc.aio at the same "
            f"transport security; median (range) of {rounds} back-to-back rounds): "
            + ", ".join(_mesh_overhead(m) for m in mesh)
        )
    if others:
        lines.append(
            "Mesh layers, each against its baseline (throughput, median (range)): "
            + ", ".join(
                f"{_key(m['variant'])} {_share(m['share'], m.get('share_range'), marks(m))} "
                f"of {_key(m.get('baseline'))}"
                for m in others
            )
        )
    return lines


# -- headlines -----------------------------------------------------------------------------


def _pick(
    figures: list[Figure], scenario: str, family: str, concurrency: int, setup: str = ""
) -> tuple[Figure, Figure] | None:
    """The (gRPC, REST) closed-loop pair of a scenario at `concurrency`."""
    for g, r in pairs(figures):
        if (g["scenario"], _family(g["driver"]), g["load"]) != (scenario, family, "closed"):
            continue
        if g["concurrency"] == concurrency and (not setup or _setup(g["variant"]) == setup):
            return g, r
    return None


def _versus(label: str, pair: tuple[Figure, Figure] | None) -> str | None:
    if pair is None:
        return None
    g, r = pair
    mark = marks(g, r)
    line = (
        f"{label}: gRPC/REST throughput {_marked(_ratio(g['items_per_s'], r['items_per_s']), mark)}"
        f" ({_num(g['items_per_s'])} vs {_num(r['items_per_s'])}/s), p99 "
        f"{_ms(_p99(g))} vs {_ms(_p99(r))} ms"
    )
    cpu = _ratio(_server_us(g), _server_us(r))
    return line + (f", server CPU per call {_marked(cpu, mark)}" if cpu != "-" else "")


def headlines(results: dict[str, Any]) -> list[str]:
    """The README-quotable figures, generated from the data."""
    figures = results["measurements"]
    levels = results["settings"]["concurrency"]
    mid = levels[len(levels) // 2] if levels else 16
    picked = [
        (f"Transport floor (bare echo, c{mid}, C generators)", "floor", "C generator", ""),
        (f"Transport floor (bare echo, c{mid}, Python clients)", "floor", "Python client", ""),
        (f"GetQuote c{mid} (C generators)", "get_quote", "C generator", ""),
        (f"GetQuote c{mid} (Python clients)", "get_quote", "Python client", ""),
        (f"PlaceOrder c{mid} over mTLS (Python clients)", "place_order", "Python client", "mTLS"),
    ]
    lines = [_versus(label, _pick(figures, s, f, mid, setup)) for label, s, f, setup in picked]
    for g, r in pairs(figures):
        if g["scenario"] == "order_entry" and g["items_per_request"] > 1:
            lines.append(
                f"Batched order entry ({g['items_per_request']} per message, "
                f"c{g['concurrency']}): {_marked(_num(g['items_per_s']), marks(g))} orders/s "
                f"over the OrderEntry stream vs {_marked(_num(r['items_per_s']), marks(r))} over "
                f"POST /v1/orders:batch"
            )
        elif g["scenario"] == "fanout":
            # The feeder's rate is in the notes (bench/scenarios/fanout.py).
            fed = re.search(r"feeder ([\d.]+) trades/s", g.get("notes", ""))
            lines.append(
                f"Fan-out to {g['concurrency']} subscribers"
                + (f" at {fed.group(1)} trades/s" if fed else "")
                + ": p99 delivery lag "
                f"{_marked(_ms(_p99(g)), marks(g))} ms over gRPC streams vs "
                f"{_marked(_ms(_p99(r)), marks(r))} ms over SSE"
            )
    for c in costs(figures):
        throughput = c.ratios(_throughput)
        if throughput:
            lines.append(
                f"{c.switch} cost, {c.transport} PlaceOrder c{c.on[0]['concurrency']}: "
                f"throughput on/off {_spread(throughput, c.mark)}, server CPU per call "
                f"{_spread(c.ratios(_server_us), c.mark)}, "
                + (
                    f"median (range) of {len(throughput)} back-to-back rounds"
                    if len(throughput) > 1
                    else "one round only: noise is as large as the effect"
                )
            )
    lines += _layers_headlines(figures)
    return [f"- {line}" for line in lines if line]


# -- plots -------------------------------------------------------------------------------


def _series_label(m: Figure) -> str:
    replay = " (replay)" if m.get("notes", "").startswith("replay") else ""
    return f"{m['transport']} {_setup(m['variant'])} {m['driver']} {_load(m)}{replay}"


def _curve_key(m: Figure) -> str:
    """What a gRPC figure and its REST counterpart share: one color, two line styles."""
    replay = " (replay)" if m.get("notes", "").startswith("replay") else ""
    return f"{_setup(m['variant'])} {_load(m)}{replay}"


def _pair_colors(plt: Any, keys: list[str]) -> dict[str, Any]:
    distinct = list(dict.fromkeys(keys))
    palette = plt.get_cmap("tab20" if len(distinct) > 10 else "tab10")
    return {key: palette(i % palette.N) for i, key in enumerate(distinct)}


def plot(figures: list[Figure], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    by_scenario: dict[str, list[Figure]] = defaultdict(list)
    for m in figures:
        if m["scenario"] == "costs":  # short repeated rounds: the table says it all
            continue
        if m["scenario"] == "layers" and (m.get("rounds") or (m.get("round") or 0) > 0):
            continue  # layers: the first round's curves stand for the rest
        by_scenario[m["scenario"]].append(m)
    for scenario, group in by_scenario.items():
        curves = [m for m in group if m["latency_curve"] and m["requests"]]
        if curves:
            fig, ax = plt.subplots(figsize=(11, 5.5))
            colors = _pair_colors(plt, [_curve_key(m) for m in curves])
            for m in curves:
                xs, ys = [], []
                for pct, ms in m["latency_curve"]:
                    if pct >= 100:
                        continue
                    xs.append(1.0 / (1.0 - pct / 100.0))  # HdrHistogram's percentile axis
                    ys.append(max(ms, 1e-3))
                style = "--" if m["transport"] == "rest" else "-"
                ax.plot(
                    xs, ys, style, marker=".", color=colors[_curve_key(m)], label=_series_label(m)
                )
            ax.set_xscale("log")
            ax.set_yscale("log")
            ticks = [1, 2, 10, 100, 1000, 10000]
            ax.set_xticks(ticks, ["0%", "50%", "90%", "99%", "99.9%", "99.99%"])
            ax.set_xlabel("percentile")
            ax.set_ylabel("latency ms" if scenario != "fanout" else "delivery lag ms")
            ax.set_title(f"{scenario}: latency by percentile (solid gRPC, dashed REST)")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
            path = out / f"latency_{scenario}.png"
            fig.tight_layout()
            fig.savefig(path, dpi=110)
            plt.close(fig)
            written.append(path)
        closed = [m for m in group if m["load"] == "closed" and m["concurrency"]]
        series: dict[str, list[Figure]] = defaultdict(list)
        for m in closed:
            batch = f" {m['items_per_request']} per message" if m["items_per_request"] > 1 else ""
            series[f"{m['transport']} {_setup(m['variant'])} {m['driver']}{batch}"].append(m)
        if any(len(s) > 1 for s in series.values()):
            fig, ax = plt.subplots(figsize=(8, 5))
            for label, ms in series.items():
                ms.sort(key=lambda m: m["concurrency"])
                style = "--" if label.startswith("rest") else "-"
                ax.plot(
                    [m["concurrency"] for m in ms],
                    [m["items_per_s"] for m in ms],
                    style,
                    marker="o",
                    label=label,
                )
            ax.set_xscale("log", base=2)
            ax.set_xlabel("concurrency (calls in flight)")
            ax.set_ylabel("items/s" if scenario == "order_entry" else "req/s")
            ax.set_title(f"{scenario}: throughput vs concurrency (solid gRPC, dashed REST)")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
            path = out / f"throughput_{scenario}.png"
            fig.tight_layout()
            fig.savefig(path, dpi=110)
            plt.close(fig)
            written.append(path)
    return written


# -- the document --------------------------------------------------------------------------


def render(results: dict[str, Any], images: Sequence[Path]) -> str:
    figures = results["measurements"]
    machine, settings = results["machine"], results["settings"]
    tools = ", ".join(v or f"{k} not installed" for k, v in machine["tools"].items())
    packages = ", ".join(f"{k} {v}" for k, v in machine["packages"].items() if v)
    drivers = sorted({m["driver"] for m in figures})
    lines = [
        "# trademesh benchmark: gRPC vs REST",
        "",
        f"Run {results['started']} ({results['elapsed_s']:.0f} s): `{results['command']}`",
        "",
    ]
    top = headlines(results)
    if top:
        lines += ["## Headlines", "", *top, ""]
    goals = targets_table(figures)
    if goals:
        lines += [
            "## Targets",
            "",
            "Each speed target beside this run's own figure.",
            "",
            *goals,
            "",
        ]
    lines += [
        "## Set-up",
        "",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, Linux {machine['kernel']}, "
        f"Python {machine['python']}. Servers and load generators share these cores.",
        f"- Load average (1/5/15 min) at start {_loads(machine.get('load_average_at_start'))}, "
        f"at end {_loads(machine.get('load_average'))}: above ~1 other work shared the cores.",
        f"- Packages: {packages}.",
        f"- Tools: {tools}. Drivers that ran: {', '.join(drivers)}.",
        f"- Settings: {settings['duration_s']:g} s per figure after a {settings['warmup_s']:g} s "
        f"warm-up; concurrency {', '.join(map(str, settings['concurrency']))}; open loop at "
        f"{', '.join(f'{f:.0%}' for f in settings['rate_fractions'])} of the lower closed-loop "
        f"max of the two transports, both at the same rate, after "
        f"{settings.get('open_warmup_s', settings['warmup_s']):g} s at that rate on pre-opened "
        f"connections; {'quick mode' if settings['quick'] else 'default mode'}.",
        "- Processes: one per service for each transport (orders, risk, matching, marketdata), "
        "static addresses (no etcd on the measured path); one process per floor.",
        "- Latency is per call (per batch for order_entry, delivery lag for fanout); open-loop "
        "latency counts from each call's intended send time. Server CPU is every serving "
        "process's user+system time in the window divided by the calls; generator CPU is the "
        "load generator's (share of one core in brackets).",
        *(f"- {note}" for note in FOOTNOTES),
    ]
    by_scenario: dict[str, list[Figure]] = defaultdict(list)
    for m in figures:
        by_scenario[m["scenario"]].append(m)
    for scenario in sorted(by_scenario, key=lambda s: (*SCENARIO_ORDER, s).index(s)):
        if scenario == "costs":
            table = costs_table(figures)
        elif scenario == "layers":
            table = layers_table(by_scenario[scenario])
        else:
            table = scenario_table(by_scenario[scenario])
        lines += ["", f"## {SCENARIO_TITLES.get(scenario, scenario)}", "", *table]
        if scenario == "floor":
            lines += ["", *other_floors_table(figures)]
        if scenario == "layers" and layer_summaries(figures):
            lines += [
                "",
                "Each round measures every variant back to back (every other round in the "
                "opposite order); a share is taken within a round against the variant in "
                '"vs", and the row gives its median and range over the rounds. The mesh\'s '
                "overhead is (c) against (a) and (e) against (d): TLS ((d) against (a)) and "
                "tracing ((f), (g) against (e)) are counted apart. Every round's figure is "
                "in results.json.",
            ]
        if scenario == "costs":
            lines += [
                "",
                "On = mTLS with telemetry (tracing at the default 1% sampling, /metrics); off = "
                "plaintext, or telemetry off (OTEL_SDK_DISABLED=true, --metrics-port -1). Each "
                "round runs the three back to back; every figure is in results.json.",
            ]
    ratios = transport_ratios(figures)
    if len(ratios) > 2:  # more than the header
        lines += [
            "",
            "## gRPC / REST, side by side",
            "",
            "Same scenario, setup, driver role and load; above 1.00x gRPC is faster "
            "(throughput) or slower (p99, CPU). Open-loop rows run both transports at the same "
            "offered rate, so only latency compares there (gRPC/REST p99 at that rate). The last "
            "two columns put a closed-loop figure against its own transport's floor (same "
            "driver role and concurrency).",
            "",
            *ratios,
            "",
            *FOOTNOTES,
        ]
    if images:
        lines += ["", "## Plots", ""]
        lines += [f"![{p.stem}]({p.name})" for p in images]
    return "\n".join(lines) + "\n"


def write(out: Path) -> Path:
    results = json.loads((out / "results.json").read_text())
    images = plot(results["measurements"], out)
    report = out / "report.md"
    report.write_text(render(results, images))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description="Rewrite a run's report.md and plots")
    parser.add_argument("out", type=Path, help="the run's folder (holds results.json)")
    print(write(parser.parse_args().out))


if __name__ == "__main__":
    main()
