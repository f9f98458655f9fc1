"""High-rate order entry: many orders per message.

gRPC: the OrderEntry bidi stream, each concurrent caller on its own stream
sending a batch of B orders and reading its per-order results before the next.
REST: `POST /v1/orders:batch` with the same B orders. Both place the batch with
OrderDesk.place_batch. With B = 1 the comparison is one order per stream message
against single `POST /v1/orders` requests. Throughput is batches/s; items/s is
orders/s. Python clients only: the C generators cannot hold a bidi stream.
"""

from __future__ import annotations

from bench.measurement import Measurement
from bench.runner import Deployment, Figure, Runner
from bench.scenarios.common import Step, python_driver, python_spec, unique_tag


def order_entry_batches(batch: int, concurrency: int) -> Step:
    def step(runner: Runner, dep: Deployment) -> Measurement:
        driver = python_driver(dep.transport)
        how = "OrderEntry bidi stream" if dep.transport == "grpc" else "POST /v1/orders:batch"
        figure = Figure(
            "order_entry",
            driver,
            "closed",
            concurrency=concurrency,
            items_per_request=batch,
            notes=f"{how}, {batch} orders per message",
        )
        spec = python_spec(
            runner,
            dep,
            driver,
            "orders",
            call="order_entry",
            load="closed",
            concurrency=concurrency,
            batch=batch,
            tag=unique_tag(runner, "batch"),
        )
        return runner.python(dep, figure, spec)

    return step


def order_entry_singles(concurrency: int) -> Step:
    def step(runner: Runner, dep: Deployment) -> Measurement:
        driver = python_driver(dep.transport)
        grpc = dep.transport == "grpc"
        how = "OrderEntry bidi stream, 1 order per message" if grpc else "single POST /v1/orders"
        figure = Figure("order_entry", driver, "closed", concurrency=concurrency, notes=how)
        spec = python_spec(
            runner,
            dep,
            driver,
            "orders",
            call="order_entry" if grpc else "place_order",
            load="closed",
            concurrency=concurrency,
            batch=1,
            tag=unique_tag(runner, "single"),
        )
        return runner.python(dep, figure, spec)

    return step
