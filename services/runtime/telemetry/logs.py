"""Process-wide logging to stderr: one line per event, JSON or plain text.

JSON (the default of serving processes, `--log-format json`) is one object per
line with the fields a log pipeline indexes, and the trace and span of the
current request, so a log line leads to its trace and a trace to its lines:

    {"time": "2026-11-22T10:15:04.123Z", "level": "INFO", "logger": "...",
     "message": "...", "service": "orders", "pid": 4242,
     "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"}

Fields passed with `extra=` (the failed-call line's method, code, details,
duration_ms) are added as they are. Text (`--log-format text`) reads like
before, with ` trace=<id>` at the end of a line logged inside a traced request.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from opentelemetry.trace import get_current_span

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [pid %(process)d] %(message)s"
# Everything a LogRecord has before `extra=` adds to it.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def current_trace_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) of the current span in hex, or None outside one."""
    context = get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str = "") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        seconds = time.gmtime(record.created)
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", seconds) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": self.service,
            "pid": record.process,
        }
        ids = current_trace_ids()
        if ids is not None:
            entry["trace_id"], entry["span_id"] = ids
        for key, value in vars(record).items():
            if key not in _STANDARD:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = current_trace_ids()
        return line if ids is None else f"{line} trace={ids[0]}"


def configure_logging(level: str = "INFO", fmt: str = "text", service: str = "") -> None:
    """Replaces the root logger's handlers with one to stderr in `fmt` ("json" or
    "text"); `service` names the process in JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if fmt == "json" else TextFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
