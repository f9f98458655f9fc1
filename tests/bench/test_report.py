"""bench/report.py on hand-made figures: a ratio from a figure with errors or from
a generator-bound figure is marked, open loops compare p99 only at one rate, and
the costs are medians over rounds with their range."""

from __future__ import annotations

from typing import Any

from bench import report, targets


def figure(transport: str, **changes: Any) -> dict[str, Any]:
    m: dict[str, Any] = {
        "scenario": "get_quote",
        "transport": transport,
        "variant": ("grpc.aio mesh" if transport == "grpc" else "FastAPI mesh") + ", plaintext",
        "driver": "python-mesh" if transport == "grpc" else "python-http",
        "load": "closed",
        "concurrency": 16,
        "target_rate": None,
        "duration_s": 4.0,
        "requests": 4000,
        "errors": 0,
        "throughput_rps": 1000.0,
        "items_per_request": 1,
        "items_per_s": 1000.0,
        "latency_ms": {"p50": 1.0, "p99": 4.0},
        "latency_curve": [],
        "generator_cpu_s": 2.0,
        "server_cpu_s": {"marketdata": 0.8},
        "notes": "",
        "round": None,
    }
    m.update(changes)
    return m


def ratio_rows(figures: list[dict[str, Any]]) -> list[str]:
    return report.transport_ratios(figures)[2:]


def test_a_clean_pair_gives_an_unmarked_ratio() -> None:
    rows = ratio_rows([figure("grpc", items_per_s=1500.0), figure("rest")])
    assert len(rows) == 1 and "| 1.50x |" in rows[0]
    assert report.ERRORS not in rows[0] and report.GENERATOR_BOUND not in rows[0]


def test_errors_and_a_busy_generator_mark_the_ratio() -> None:
    with_errors = ratio_rows([figure("grpc", errors=3), figure("rest")])
    assert f"1.00x {report.ERRORS}" in with_errors[0]
    bound = ratio_rows([figure("grpc"), figure("rest", generator_cpu_s=3.6)])  # 90% of a core
    assert f"1.00x {report.GENERATOR_BOUND}" in bound[0]
    assert report.ERRORS not in bound[0]
    # Under the threshold no mark: 80% of a core.
    assert (
        report.GENERATOR_BOUND
        not in ratio_rows([figure("grpc"), figure("rest", generator_cpu_s=3.2)])[0]
    )


def test_open_loops_pair_at_one_rate_and_compare_latency_only() -> None:
    def open_loop(transport: str, rate: float, p99: float) -> dict[str, Any]:
        return figure(
            transport, load="open", concurrency=None, target_rate=rate, latency_ms={"p99": p99}
        )

    rows = ratio_rows([open_loop("grpc", 500, 2.0), open_loop("rest", 500, 8.0)])
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].split("|")]
    assert "open 500/s, both" in cells and "0.25x" in cells
    assert cells[7] == "-"  # no throughput ratio: both sent the offered rate
    # Different rates do not pair.
    assert ratio_rows([open_loop("grpc", 500, 2.0), open_loop("rest", 400, 8.0)]) == []


def test_costs_are_medians_over_rounds_with_their_range() -> None:
    figures = []
    for r, (on, off) in enumerate([(900, 1000), (800, 1000), (990, 1000)]):
        for setup, rps in (("mTLS", on), ("plaintext", 1000), ("mTLS, telemetry off", off)):
            figures.append(
                figure(
                    "grpc",
                    scenario="costs",
                    variant=f"grpc.aio mesh, {setup}",
                    throughput_rps=float(rps),
                    round=r,
                )
            )
    found = {c.switch: c for c in report.costs(figures)}
    assert set(found) == {"mTLS", "telemetry"}
    telemetry = found["telemetry"]
    assert report._spread(telemetry.ratios(report._throughput)) == "0.90x (0.80-0.99)"
    assert len(telemetry.on) == 3
    lines = report.headlines({"measurements": figures, "settings": {"concurrency": [16]}})
    assert any(
        line.startswith("- telemetry cost, grpc") and "3 back-to-back" in line for line in lines
    )


def test_layers_give_each_variant_its_share_of_its_baseline() -> None:
    def summary(variant: str, baseline: str | None, share: float | None, **more: Any) -> dict:
        fields: dict[str, Any] = {
            "scenario": "layers",
            "variant": variant,
            "driver": "python-grpc",
            "baseline": baseline,
            "rounds": 5,
            "share": share,
            "share_range": [share - 0.05, share + 0.02] if share else None,
            "cpu_ratio": 1.04 if share else None,
            "cpu_ratio_range": [1.01, 1.1] if share else None,
        }
        return figure("grpc", **{**fields, **more})

    bare = summary("(a) bare grpc.aio, plaintext", None, None)
    mesh = summary(
        "(c) plaintext: MeshServer + MeshChannel", bare["variant"], 0.93,
        mesh_share=0.93, mesh_share_range=[0.88, 0.95],
    )  # fmt: skip
    tls = summary("(d) bare grpc.aio, mTLS", bare["variant"], 0.8)
    failing = summary("(f) (e) + tracing, default sampling", "(e) mTLS: ...", 0.7, errors=2)
    one_round = figure("grpc", scenario="layers", variant=mesh["variant"], round=0)
    alone = figure(
        "grpc", scenario="layers", variant="interceptor: server ChainInterceptor, mTLS (all)",
        driver="in-process", latency_ms={"mean": 0.0021},
    )  # fmt: skip
    figures = [one_round, bare, mesh, tls, failing, alone]

    rows = report.layers_table(figures)
    assert len([r for r in rows if r.startswith("| (")]) == 4  # the summaries, not the round
    (mesh_row,) = [r for r in rows if r.startswith("| (c)")]
    cells = [c.strip() for c in mesh_row.split("|")]
    assert cells[2:6] == ["(a)", "5", "1,000", "93% (88-95%)"]
    assert cells[6] == "1.04x (1.01-1.10)"
    assert report.ERRORS in next(r for r in rows if r.startswith("| (f)"))
    assert "| server ChainInterceptor, mTLS (all) | 2.10 |" in rows

    lines = report.headlines({"measurements": figures, "settings": {"concurrency": [16]}})
    (overhead,) = [line for line in lines if line.startswith("- Mesh overhead")]
    assert "(c) plaintext 93% (88-95%) of (a), CPU per call 1.04x" in overhead
    assert "5 back-to-back rounds" in overhead
    (others,) = [line for line in lines if line.startswith("- Mesh layers")]
    assert "(d) 80% (75-82%) of (a)" in others and f"70% (65-72%) {report.ERRORS}" in others


def test_layers_of_a_run_before_rounds_keep_their_one_pass_table() -> None:
    one_pass = [
        figure("grpc", scenario="layers", variant="(a) bare grpc.aio", driver="python-grpc"),
        figure("grpc", scenario="layers", variant="(b) + MeshServer", driver="python-grpc",
               throughput_rps=850.0),
    ]  # fmt: skip
    assert len(report.layers_table(one_pass)) == 4  # header, rule, two figures
    lines = report.headlines({"measurements": one_pass, "settings": {"concurrency": [16]}})
    assert "- Mesh layers, throughput as a share of (a) bare grpc.aio: (b) 85%" in lines


# -- floors: a second bare gRPC server (pygrpc-native) beside grpc.aio's ----------------------


def floor_figure(variant: str, driver: str, rps: float, cpu_s: float) -> dict[str, Any]:
    transport = "rest" if "aiohttp" in variant else "grpc"
    return figure(
        transport, scenario="floor", variant=variant, driver=driver, throughput_rps=rps,
        items_per_s=rps, requests=int(rps * 4), server_cpu_s={"floor": cpu_s},
    )  # fmt: skip


def floors() -> list[dict[str, Any]]:
    """The order of a run: grpc.aio, then pygrpc-native, then REST."""
    return [
        floor_figure("bare grpc.aio", "h2load", 6000.0, 3.6),  # 150 µs per call
        floor_figure("bare grpc.aio", "python-grpc", 3000.0, 2.4),  # 200 µs
        floor_figure("bare pygrpc-native", "h2load", 30000.0, 3.0),  # 25 µs
        floor_figure("bare pygrpc-native", "python-grpc", 10000.0, 1.6),  # 40 µs
        floor_figure("bare aiohttp+orjson", "wrk", 8000.0, 3.2),
        floor_figure("bare aiohttp+orjson", "python-http", 4000.0, 3.2),
    ]


def test_rest_pairs_with_the_grpc_aio_floor_only() -> None:
    rows = ratio_rows(floors())
    assert len(rows) == 2  # one pair per driver role, none for pygrpc-native
    by_drivers = {row.split("|")[3].strip(): row for row in rows}
    assert "| 6,000 | 8,000 | 0.75x |" in by_drivers["h2load / wrk"]
    assert "| 3,000 | 4,000 | 0.75x |" in by_drivers["python-grpc / python-http"]
    assert "30,000" not in "".join(rows) and "10,000" not in "".join(rows)


def test_a_grpc_figure_is_a_share_of_the_grpc_aio_floor() -> None:
    quote = figure("grpc", driver="h2load", throughput_rps=3000.0, items_per_s=3000.0)
    rest = figure("rest", driver="wrk", throughput_rps=2000.0, items_per_s=2000.0)
    (row,) = ratio_rows([*floors(), quote, rest])[2:]  # after the two floor pairs
    cells = [c.strip() for c in row.split("|")]
    assert cells[-3:-1] == ["50%", "25%"]  # 3,000 of grpc.aio's 6,000; 2,000 of 8,000


def test_headlines_and_targets_put_rest_against_the_grpc_aio_floor() -> None:
    lines = report.headlines({"measurements": floors(), "settings": {"concurrency": [16]}})
    (c_floor,) = [line for line in lines if "C generators" in line and "floor" in line]
    assert "(6,000 vs 8,000/s)" in c_floor
    (python_floor,) = [line for line in lines if "Python clients" in line and "floor" in line]
    assert "(3,000 vs 4,000/s)" in python_floor
    assert targets._floor_line(floors()) == (
        "Floors beside them (bare echo, c16, C generators): grpc.aio 6,000/s, aiohttp 8,000/s."
    )


def test_pygrpc_native_rows_stand_beside_grpc_aio() -> None:
    lines = report.other_floors_table(floors())
    rows = [line for line in lines if line.startswith("| bare pygrpc-native")]
    assert len(rows) == 2
    cells = {row.split("|")[3].strip(): [c.strip() for c in row.split("|")] for row in rows}
    h2load = cells["h2load"]
    assert h2load[2] == "bare grpc.aio" and h2load[5:8] == ["30,000", "6,000", "5.00x"]
    assert h2load[8:11] == ["25", "150", "0.17x"]
    assert cells["python-grpc"][5:11] == ["10,000", "3,000", "3.33x", "40", "200", "0.20x"]
    # The scenario table names each floor's server in its variant column.
    table = report.scenario_table(floors())
    assert sum("| bare pygrpc-native |" in row for row in table) == 2


def test_a_run_without_pygrpc_native_says_why_its_floor_is_missing() -> None:
    without = [m for m in floors() if m["variant"] != "bare pygrpc-native"]
    (line,) = report.other_floors_table(without)
    assert "pip install -e '.[native]'" in line
