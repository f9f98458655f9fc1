"""One instance of one service as stored in etcd: the key layout and the JSON value codec.

Key: `<prefix><service>/<instance-id>`, prefix `/trademesh/services/` by default.
Value: `{"address": "127.0.0.1:50051", "protocol": "grpc", "zone": "", "weight": 100,
"version": ""}`. Unknown fields in a value are ignored so a newer writer does not break an
older reader; a value that cannot be read raises `EndpointDecodeError`, which watchers log
and skip.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

Protocol = Literal["grpc", "rest"]
PROTOCOLS: frozenset[str] = frozenset(get_args(Protocol))

DEFAULT_PREFIX = "/trademesh/services/"
# A neutral weight with room both ways: a half-size instance says 50, a double one 200.
DEFAULT_WEIGHT = 100


class EndpointDecodeError(ValueError):
    """An etcd key or value that is not a valid endpoint record."""


def normalize_prefix(prefix: str) -> str:
    """`/a/b` and `/a/b/` name the same folder; keys are built from the slash-ended form."""
    if not prefix.startswith("/"):
        raise ValueError(f"key prefix {prefix!r} must start with '/', e.g. {DEFAULT_PREFIX!r}")
    return prefix if prefix.endswith("/") else prefix + "/"


def service_prefix(service: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The etcd prefix that holds every instance of `service`, ending with '/'."""
    _check_name("service", service)
    return f"{normalize_prefix(prefix)}{service}/"


def endpoint_key(service: str, instance_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    _check_name("instance_id", instance_id)
    return service_prefix(service, prefix) + instance_id


def _check_name(what: str, value: str) -> None:
    # A '/' would nest the key one level deeper, where a prefix watch of the service would
    # see it but could not tell which instance it belongs to.
    if not value or "/" in value:
        raise ValueError(f"{what} {value!r} must be a non-empty name without '/'")


def split_address(address: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` into (host, port); raises ValueError when it is neither."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"address {address!r} must look like 'host:port', e.g. '127.0.0.1:50051'")
    return host.removeprefix("[").removesuffix("]"), int(port_text)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one instance of a service listens and how a balancer should treat it."""

    instance_id: str
    service: str
    address: str
    protocol: Protocol = "grpc"
    zone: str = ""
    weight: int = DEFAULT_WEIGHT
    version: str = ""

    def __post_init__(self) -> None:
        _check_name("instance_id", self.instance_id)
        _check_name("service", self.service)
        split_address(self.address)
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol {self.protocol!r} must be one of {sorted(PROTOCOLS)}")
        # bool is an int in Python; `"weight": true` in JSON is a bug, not a weight of 1.
        if not isinstance(self.weight, int) or isinstance(self.weight, bool) or self.weight < 1:
            raise ValueError(f"weight {self.weight!r} must be an integer >= 1")

    @property
    def host(self) -> str:
        return split_address(self.address)[0]

    @property
    def port(self) -> int:
        return split_address(self.address)[1]

    def key(self, prefix: str = DEFAULT_PREFIX) -> str:
        return endpoint_key(self.service, self.instance_id, prefix)

    def to_value(self) -> bytes:
        """The etcd value: the instance's identity lives in the key, not repeated here."""
        record = {
            "address": self.address,
            "protocol": self.protocol,
            "zone": self.zone,
            "weight": self.weight,
            "version": self.version,
        }
        return json.dumps(record, separators=(",", ":")).encode()

    @classmethod
    def from_value(cls, service: str, instance_id: str, value: bytes) -> Endpoint:
        """Reads a value written by `to_value` (or by hand with etcdctl); raises
        EndpointDecodeError with the reason when it cannot."""
        try:
            record = json.loads(value)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EndpointDecodeError(f"value is not JSON: {exc}") from exc
        if not isinstance(record, dict):
            raise EndpointDecodeError(f"value must be a JSON object, got {type(record).__name__}")
        try:
            return cls(
                instance_id=instance_id,
                service=service,
                address=_field(record, "address", str, None),
                protocol=cast(Protocol, _field(record, "protocol", str, "grpc")),
                zone=_field(record, "zone", str, ""),
                weight=_field(record, "weight", int, DEFAULT_WEIGHT),
                version=_field(record, "version", str, ""),
            )
        except ValueError as exc:
            raise EndpointDecodeError(str(exc)) from exc

    @classmethod
    def from_key_value(cls, key: str, value: bytes, prefix: str = DEFAULT_PREFIX) -> Endpoint:
        service, instance_id = split_key(key, prefix)
        return cls.from_value(service, instance_id, value)


def split_key(key: str, prefix: str = DEFAULT_PREFIX) -> tuple[str, str]:
    """`<prefix><service>/<instance-id>` into (service, instance_id)."""
    prefix = normalize_prefix(prefix)
    rest = key.removeprefix(prefix)
    service, sep, instance_id = rest.partition("/")
    if rest == key or not sep or not service or not instance_id or "/" in instance_id:
        raise EndpointDecodeError(f"key {key!r} is not '{prefix}<service>/<instance-id>'")
    return service, instance_id


def _field(record: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    if name not in record:
        if default is None:
            raise ValueError(f"field {name!r} is missing")
        return default
    value = record[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"field {name!r} must be a {kind.__name__}, got {value!r}")
    return value
