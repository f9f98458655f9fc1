"""Spans as JSON lines: the exporter a process uses without an OTLP collector, and
the reader `make observe` and the tests use to put a trace back together.

One object per finished span:

    {"trace_id": "4bf9...", "span_id": "00f0...", "parent_span_id": "a3ce..." | null,
     "name": "trading.v1.RiskService/Reserve", "kind": "SERVER", "service": "risk",
     "start_ns": ..., "end_ns": ..., "status_code": "UNSET" | "OK" | "ERROR",
     "status_description": "...", "attributes": {...},
     "events": [{"name": "retry", "time_ns": ..., "attributes": {...}}]}
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


def span_record(span: ReadableSpan) -> dict[str, Any]:
    context = span.get_span_context()
    assert context is not None, "a finished SDK span has a context"
    parent = span.parent
    return {
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_span_id": f"{parent.span_id:016x}" if parent is not None else None,
        "name": span.name,
        "kind": span.kind.name,
        "service": span.resource.attributes.get("service.name", ""),
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status_code": span.status.status_code.name,
        "status_description": span.status.description or "",
        "attributes": dict(span.attributes or {}),
        "events": [
            {"name": e.name, "time_ns": e.timestamp, "attributes": dict(e.attributes or {})}
            for e in span.events
        ],
    }


class JsonLinesSpanExporter(SpanExporter):
    """Appends spans to `path`. Several processes may share the file: each batch
    is one write() to a descriptor opened O_APPEND, so lines never interleave."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._fd is None:
            return SpanExportResult.FAILURE
        lines = "".join(json.dumps(span_record(s), default=str) + "\n" for s in spans)
        data = memoryview(lines.encode())
        while data:
            data = data[os.write(self._fd, data) :]
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True  # every export is written at once


def read_spans(paths: Iterable[Path], trace_id: str | None = None) -> list[dict[str, Any]]:
    """Every span in the files (of one trace, if given), oldest first."""
    spans = [
        record
        for path in paths
        for record in _records(path)
        if trace_id is None or record.get("trace_id") == trace_id
    ]
    return sorted(spans, key=lambda s: s["start_ns"])


def _records(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


def render_tree(spans: Sequence[dict[str, Any]]) -> list[str]:
    """One trace as an indented tree, parents above children in start order:
    name, service, duration, gRPC status, and what the mesh and the saga noted."""
    known = {s["span_id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for span in sorted(spans, key=lambda s: s["start_ns"]):
        parent = span["parent_span_id"]
        children[parent if parent in known else None].append(span)
    lines: list[str] = []

    def walk(span: dict[str, Any], prefix: str, branch: str, below: str) -> None:
        label = f"{prefix}{branch}{span['name']}"
        millis = (span["end_ns"] - span["start_ns"]) / 1e6
        lines.append(f"{label:<58} {span['service']:<10} {millis:8.2f} ms  {_outcome(span)}")
        kids = children.get(span["span_id"], [])
        for i, kid in enumerate(kids):
            last = i == len(kids) - 1
            walk(kid, prefix + below, "└─ " if last else "├─ ", "   " if last else "│  ")

    for root in children[None]:
        walk(root, "", "", "")
    return lines


def _outcome(span: dict[str, Any]) -> str:
    attributes = span["attributes"]
    code = attributes.get("rpc.grpc.status_code")
    if span["status_code"] == "ERROR" or code not in (None, 0):
        words = [_CODE_NAMES.get(code, "ERROR") if code is not None else "ERROR"]
        if span["status_description"]:
            words.append(span["status_description"][:60])
    else:
        words = ["OK"]
    if "trademesh.endpoint" in attributes:
        attempts = attributes.get("trademesh.attempts", 1)
        words.append(f"-> {attributes['trademesh.endpoint']} ({attempts} attempt(s))")
    events = [e["name"] for e in span["events"] if e["name"] != "exception"]
    if events:
        words.append("[" + ", ".join(events) + "]")
    return "  ".join(words)
