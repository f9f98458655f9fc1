"""An immutable snapshot of a service's endpoints, keyed by instance id, at an etcd revision."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from discovery.endpoint import Endpoint


@dataclass(frozen=True, eq=False, slots=True)
class EndpointSet:
    """What a balancer picks from. Safe to share between tasks: it never changes; a change
    in etcd produces a new set. Iterates in instance-id order so picks are reproducible."""

    service: str
    revision: int = 0
    endpoints: Mapping[str, Endpoint] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def of(cls, service: str, endpoints: Iterable[Endpoint], revision: int) -> EndpointSet:
        by_id = {endpoint.instance_id: endpoint for endpoint in endpoints}
        return cls(service, revision, MappingProxyType(dict(sorted(by_id.items()))))

    def __len__(self) -> int:
        return len(self.endpoints)

    def __iter__(self) -> Iterator[Endpoint]:
        return iter(self.endpoints.values())

    def __contains__(self, instance_id: object) -> bool:
        return instance_id in self.endpoints

    def __eq__(self, other: object) -> bool:
        """Same service and same endpoints; the revision is when, not what."""
        if not isinstance(other, EndpointSet):
            return NotImplemented
        return self.service == other.service and dict(self.endpoints) == dict(other.endpoints)

    __hash__ = None  # type: ignore[assignment]  # equal sets may differ in revision

    def get(self, instance_id: str) -> Endpoint | None:
        return self.endpoints.get(instance_id)

    @property
    def addresses(self) -> list[str]:
        return [endpoint.address for endpoint in self.endpoints.values()]

    def __repr__(self) -> str:
        ids = ", ".join(self.endpoints)
        return f"EndpointSet({self.service!r}, revision={self.revision}, [{ids}])"
