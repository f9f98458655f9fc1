"""Key layout and the JSON value codec of an endpoint record."""

from __future__ import annotations

import json

import pytest

from discovery.endpoint import (
    DEFAULT_PREFIX,
    Endpoint,
    EndpointDecodeError,
    endpoint_key,
    service_prefix,
    split_address,
    split_key,
)


def test_value_round_trip_and_layout() -> None:
    endpoint = Endpoint("risk-1", "risk", "127.0.0.1:50051", "grpc", "eu-1", 50, "1.2.3")
    assert endpoint.key() == "/trademesh/services/risk/risk-1"
    assert json.loads(endpoint.to_value()) == {
        "address": "127.0.0.1:50051",
        "protocol": "grpc",
        "zone": "eu-1",
        "weight": 50,
        "version": "1.2.3",
    }
    assert Endpoint.from_key_value(endpoint.key(), endpoint.to_value()) == endpoint
    assert (endpoint.host, endpoint.port) == ("127.0.0.1", 50051)


def test_missing_optional_fields_take_defaults_and_unknown_fields_are_ignored() -> None:
    value = b'{"address": "[::1]:8080", "future": {"x": 1}}'
    endpoint = Endpoint.from_value("orders", "o-1", value)
    assert endpoint == Endpoint("o-1", "orders", "[::1]:8080")
    assert (endpoint.protocol, endpoint.weight, endpoint.host) == ("grpc", 100, "::1")


@pytest.mark.parametrize(
    "value",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b"{}",
        b'{"address": "nohost"}',
        b'{"address": "h:0"}',
        b'{"address": "h:1", "protocol": "soap"}',
        b'{"address": "h:1", "weight": 0}',
        b'{"address": "h:1", "weight": true}',
        b'{"address": "h:1", "weight": "5"}',
        b'{"address": 5}',
    ],
)
def test_bad_values_raise_decode_error(value: bytes) -> None:
    with pytest.raises(EndpointDecodeError):
        Endpoint.from_value("orders", "o-1", value)


def test_prefix_is_configurable_and_normalized() -> None:
    assert service_prefix("md", "/x/y") == "/x/y/md/"
    assert endpoint_key("md", "i", "/x/y/") == "/x/y/md/i"
    assert split_key("/x/y/md/i", "/x/y") == ("md", "i")
    assert service_prefix("md") == DEFAULT_PREFIX + "md/"


@pytest.mark.parametrize(
    "key",
    [
        "/trademesh/services/md",
        "/trademesh/services/md/",
        "/other/md/i",
        "/trademesh/services/md/a/b",
    ],
)
def test_keys_outside_the_layout_are_rejected(key: str) -> None:
    with pytest.raises(EndpointDecodeError):
        split_key(key)


def test_names_with_slashes_are_refused_early() -> None:
    with pytest.raises(ValueError, match="without '/'"):
        Endpoint("a/b", "risk", "127.0.0.1:1")
    with pytest.raises(ValueError, match="host:port"):
        split_address("127.0.0.1")
