"""The run's report: report.md (tables and ratios) and PNG plots, from results.json.

python -m bench.report bench/results/example   # rewrites report.md and the PNGs
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

SCENARIO_ORDER = (
    "floor", "get_quote", "place_order", "order_entry", "fanout", "fanout_feeder", "layers",
)  # fmt: skip
SCENARIO_TITLES = {
    "floor": "Floors: bare grpc.aio vs bare aiohttp echo (GetQuote-shaped, no domain code)",
    "get_quote": "GetQuote: one hop to MarketDataService (plaintext mesh)",
    "place_order": "PlaceOrder: three hops (orders -> risk -> matching)",
    "order_entry": "High-rate order entry: batches per message",
    "fanout": "Market-data fan-out: delivery lag to N subscribers",
    "fanout_feeder": "Fan-out feeder: the PlaceOrder load behind the fan-out",
    "layers": "Mesh layers (bench/layers.py)",
}
Figure = dict[str, Any]


def _family(driver: str) -> str:
    """Drivers that play the same role on each side."""
    if driver in ("h2load", "ghz", "wrk"):
        return "C generator"
    if driver.startswith("python"):
        return "Python client"
    return driver


def _setup(variant: str) -> str:
    """A deployment's variant without its transport's stack name."""
    if variant.startswith("bare"):
        return "floor"
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
    return f"{cpu:.1f} s ({cpu / m['duration_s']:.0%})"


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
                _ms(lat.get("p99.9")), str(m["errors"]), _num(_server_us(m)), _generator(m),
                m.get("notes", ""),
            )
        )  # fmt: skip
    return _table(header, rows)


def _pair_key(m: Figure) -> tuple[Any, ...]:
    load: Any = m["concurrency"]
    if m["load"] == "open":
        load = m.get("notes", "").split(";")[0]  # "50% of closed-loop max"
    # order_entry: batches pair with batches, one order per message with single POSTs.
    return (
        m["scenario"],
        _setup(m["variant"]),
        _family(m["driver"]),
        m["load"],
        load,
        m["items_per_request"],
    )


def transport_ratios(figures: list[Figure]) -> list[str]:
    by_key: dict[tuple[Any, ...], dict[str, Figure]] = defaultdict(dict)
    for m in figures:
        if m["scenario"] in ("layers", "fanout_feeder"):
            continue
        by_key[_pair_key(m)][m["transport"]] = m
    rows = []
    for key, pair in by_key.items():
        if "grpc" not in pair or "rest" not in pair:
            continue
        g, r = pair["grpc"], pair["rest"]
        rows.append(
            (
                g["scenario"], key[1], f"{g['driver']} / {r['driver']}", _load(g),
                _num(g["items_per_s"]), _num(r["items_per_s"]),
                _ratio(g["items_per_s"], r["items_per_s"]),
                _ms(g["latency_ms"].get("p99")), _ms(r["latency_ms"].get("p99")),
                _ratio(g["latency_ms"].get("p99"), r["latency_ms"].get("p99")),
                _ratio(_server_us(g), _server_us(r)),
            )
        )  # fmt: skip
    header = (
        "scenario", "setup", "drivers", "load (gRPC side)", "gRPC items/s", "REST items/s",
        "gRPC/REST throughput", "gRPC p99 ms", "REST p99 ms", "gRPC/REST p99",
        "gRPC/REST server CPU per call",
    )  # fmt: skip
    return _table(header, rows)


def floor_ratios(figures: list[Figure]) -> list[str]:
    floors = {
        (m["transport"], _family(m["driver"]), m["concurrency"]): m
        for m in figures
        if m["scenario"] == "floor"
    }
    rows = []
    for m in figures:
        if m["scenario"] in ("floor", "fanout", "fanout_feeder", "layers") or m["load"] != "closed":
            continue
        floor = floors.get((m["transport"], _family(m["driver"]), m["concurrency"]))
        if floor is None:
            continue
        rows.append(
            (
                m["scenario"], m["transport"], m["variant"], m["driver"], _load(m),
                _num(m["throughput_rps"]), _num(floor["throughput_rps"]),
                f"{m['throughput_rps'] / floor['throughput_rps']:.0%}"
                if floor["throughput_rps"] else "-",
                _ratio(_server_us(m), _server_us(floor)),
            )
        )  # fmt: skip
    header = (
        "scenario", "transport", "variant", "driver", "load", "req/s", "floor req/s",
        "of floor", "server CPU per call vs floor",
    )  # fmt: skip
    return _table(header, rows)


def switch_ratios(figures: list[Figure]) -> list[str]:
    """mTLS on/off and telemetry on/off, PlaceOrder, same driver and concurrency."""
    place = [m for m in figures if m["scenario"] == "place_order" and m["load"] == "closed"]
    by = {(m["transport"], _setup(m["variant"]), m["driver"], m["concurrency"]): m for m in place}
    rows = []
    for (transport, setup, driver, conc), m in by.items():
        if setup != "mTLS":
            continue
        for other, label in (
            ("plaintext", "mTLS on / off"),
            ("mTLS, telemetry off", "telemetry on / off"),
        ):
            base = by.get((transport, other, driver, conc))
            if base is None:
                continue
            rows.append(
                (
                    transport, label, driver, f"c{conc}", _num(m["throughput_rps"]),
                    _num(base["throughput_rps"]),
                    _ratio(m["throughput_rps"], base["throughput_rps"]),
                    _ms(m["latency_ms"].get("p99")), _ms(base["latency_ms"].get("p99")),
                    _ratio(_server_us(m), _server_us(base)),
                )
            )  # fmt: skip
    header = (
        "transport", "switch", "driver", "load", "req/s on", "req/s off", "throughput on/off",
        "p99 ms on", "p99 ms off", "server CPU per call on/off",
    )  # fmt: skip
    return _table(header, rows)


# -- plots -------------------------------------------------------------------------------


def _series_label(m: Figure) -> str:
    replay = " (replay)" if m.get("notes", "").startswith("replay") else ""
    return f"{m['transport']} {_setup(m['variant'])} {m['driver']} {_load(m)}{replay}"


def plot(figures: list[Figure], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    by_scenario: dict[str, list[Figure]] = defaultdict(list)
    for m in figures:
        by_scenario[m["scenario"]].append(m)
    for scenario, group in by_scenario.items():
        curves = [m for m in group if m["latency_curve"] and m["requests"]]
        if curves:
            fig, ax = plt.subplots(figsize=(9, 5.5))
            for m in curves:
                xs, ys = [], []
                for pct, ms in m["latency_curve"]:
                    if pct >= 100:
                        continue
                    xs.append(1.0 / (1.0 - pct / 100.0))  # HdrHistogram's percentile axis
                    ys.append(max(ms, 1e-3))
                style = "--" if m["transport"] == "rest" else "-"
                ax.plot(xs, ys, style, marker=".", label=_series_label(m))
            ax.set_xscale("log")
            ax.set_yscale("log")
            ticks = [1, 2, 10, 100, 1000, 10000]
            ax.set_xticks(ticks, ["0%", "50%", "90%", "99%", "99.9%", "99.99%"])
            ax.set_xlabel("percentile")
            ax.set_ylabel("latency ms" if scenario != "fanout" else "delivery lag ms")
            ax.set_title(f"{scenario}: latency by percentile (solid gRPC, dashed REST)")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=6, loc="upper left")
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
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, Linux {machine['kernel']}, "
        f"Python {machine['python']}. Servers and load generators share these cores.",
        f"- Load average (1/5/15 min) at start {_loads(machine.get('load_average_at_start'))}, "
        f"at end {_loads(machine.get('load_average'))}: above ~1 other work shared the cores.",
        f"- Packages: {packages}.",
        f"- Tools: {tools}. Drivers that ran: {', '.join(drivers)}.",
        f"- Settings: {settings['duration_s']:g} s per figure after a {settings['warmup_s']:g} s "
        f"warm-up; concurrency {', '.join(map(str, settings['concurrency']))}; open loop at "
        f"{', '.join(f'{f:.0%}' for f in settings['rate_fractions'])} of the closed-loop max; "
        f"{'quick mode' if settings['quick'] else 'default mode'}.",
        "- Processes: one per service for each transport (orders, risk, matching, marketdata), "
        "static addresses (no etcd on the measured path); one process per floor.",
        "- Latency is per call (per batch for order_entry, delivery lag for fanout); open-loop "
        "latency counts from each call's intended send time. Server CPU is every serving "
        "process's user+system time in the window divided by the calls; generator CPU is the "
        "load generator's (share of one core in brackets).",
        "",
    ]
    by_scenario: dict[str, list[Figure]] = defaultdict(list)
    for m in figures:
        by_scenario[m["scenario"]].append(m)
    for scenario in sorted(by_scenario, key=lambda s: (*SCENARIO_ORDER, s).index(s)):
        lines += ["", f"## {SCENARIO_TITLES.get(scenario, scenario)}", ""]
        lines += scenario_table(by_scenario[scenario])
    sections = (
        (
            "gRPC / REST, side by side",
            "Same scenario, setup, driver role and load; above 1.00x gRPC is faster "
            "(throughput) or slower (p99, CPU).",
            transport_ratios(figures),
        ),
        ("Each scenario against its transport's floor", "", floor_ratios(figures)),
        ("mTLS and telemetry: on vs off (PlaceOrder)", "", switch_ratios(figures)),
    )
    for title, intro, table in sections:
        if len(table) > 2:  # more than the header
            lines += ["", f"## {title}", ""] + ([intro, ""] if intro else []) + table
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
