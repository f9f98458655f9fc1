"""Who may call which method: the mesh's authorization policy, as data.

The policy is the JSON file beside this module (`authz_policy.json`), or the one
named by `--authz-policy FILE`: identities (the `<identity>` of the caller's
`spiffe://trademesh/<identity>` certificate) map to what they may call, and a
few methods are open to any certificate of the mesh CA (health probes,
reflection). Everything else is denied. An entry is a full service name (all its
methods) or `service/method`:

    {"open": ["grpc.health.v1.Health"],
     "allow": {"orders": ["trading.v1.RiskService", "trading.v1.MatchingEngine/Submit"]}}

The interceptor (interceptors/authz.py) asks once per method which identities
may call it, so the per-call check is one set lookup.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_POLICY_FILE = Path(__file__).with_name("authz_policy.json")


class PolicyError(ValueError):
    """The policy file cannot be used; the message names the file and the problem."""


def _method_parts(method: str) -> tuple[str, str]:
    """Splits "/pkg.Service/Method" into ("pkg.Service", "Method")."""
    service, _, name = method.lstrip("/").partition("/")
    return service, name


def _matches(entry: str, service: str, name: str) -> bool:
    entry_service, _, entry_method = entry.partition("/")
    return entry_service == service and entry_method in ("", name)


@dataclass(frozen=True)
class AuthzPolicy:
    open: tuple[str, ...]
    allow: Mapping[str, tuple[str, ...]]

    @classmethod
    def from_dict(cls, data: object, source: str = "the policy") -> AuthzPolicy:
        if not isinstance(data, dict) or not isinstance(data.get("allow"), dict):
            raise PolicyError(f"{source}: expected an object with an 'allow' object")
        open_entries = data.get("open", [])
        if not _is_entries(open_entries):
            raise PolicyError(f"{source}: 'open' must be a list of service[/method] strings")
        allow: dict[str, tuple[str, ...]] = {}
        for identity, entries in data["allow"].items():
            if not _is_entries(entries):
                raise PolicyError(
                    f"{source}: allow[{identity!r}] must be a list of service[/method] strings"
                )
            allow[identity] = tuple(entries)
        return cls(tuple(open_entries), allow)

    @classmethod
    def load(cls, path: str | Path | None = None) -> AuthzPolicy:
        """The policy in `path`, or the built-in one."""
        source = Path(path) if path is not None else DEFAULT_POLICY_FILE
        try:
            data = json.loads(source.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise PolicyError(f"cannot read the authorization policy {source}: {exc}") from None
        return cls.from_dict(data, str(source))

    def is_open(self, method: str) -> bool:
        """Callable with any certificate of the mesh CA."""
        service, name = _method_parts(method)
        return any(_matches(entry, service, name) for entry in self.open)

    def identities_for(self, method: str) -> frozenset[str]:
        """The identities allowed to call `method` ("/pkg.Service/Method")."""
        service, name = _method_parts(method)
        return frozenset(
            identity
            for identity, entries in self.allow.items()
            if any(_matches(entry, service, name) for entry in entries)
        )


def _is_entries(value: object) -> bool:
    return isinstance(value, list) and all(
        isinstance(entry, str) and entry and not entry.startswith("/") for entry in value
    )
