"""JSON responses serialized by orjson.

FastAPI's own ORJSONResponse is deprecated (it prefers pydantic response models);
the adapters build plain dicts, so a small orjson response is the cheapest path.
Handlers return these directly, which also skips FastAPI's jsonable_encoder.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class JsonResponse(JSONResponse):
    """application/json rendered by orjson (ints stay JSON numbers)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ProblemResponse(JsonResponse):
    """An RFC 9457 problem document."""

    media_type = "application/problem+json"
