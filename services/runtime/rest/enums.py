"""Proto enums in JSON as their value names ("SIDE_BUY"), like proto3 JSON.

Request models take a Literal of the names (pydantic validates it, OpenAPI lists
it); converters use the generated wrappers' Name()/Value(), never json_format.
"""

from __future__ import annotations

from typing import Any, Literal

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from trading.v1 import common_pb2


def enum_names(enum: EnumTypeWrapper) -> Any:
    """The Literal type of `enum`'s value names, for a request model field."""
    return Literal[tuple(enum.keys())]  # type: ignore[valid-type]


# The trading.v1 enums that request bodies carry.
SideName = enum_names(common_pb2.Side)
OrderTypeName = enum_names(common_pb2.OrderType)
TimeInForceName = enum_names(common_pb2.TimeInForce)
