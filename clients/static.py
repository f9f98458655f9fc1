"""A fixed list of endpoints, for a mesh without a registry (one box, tests)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from discovery import Endpoint, EndpointSet
from discovery.endpoint import Protocol


class StaticEndpoints:
    """The same shape of source as discovery.ServiceWatcher: `current` and
    `subscribe`, with a set that only changes when `update` is called."""

    def __init__(
        self, service: str, addresses: Sequence[str], *, protocol: Protocol = "grpc"
    ) -> None:
        self.service = service
        self.protocol: Protocol = protocol  # what the endpoints speak: "grpc" or "rest"
        self._subscribers: list[Callable[[EndpointSet], None]] = []
        self.current = self._set(addresses, 1)

    def _set(self, addresses: Sequence[str], revision: int) -> EndpointSet:
        endpoints = [
            Endpoint(
                instance_id=f"{self.service}-{i}",
                service=self.service,
                address=address,
                protocol=self.protocol,
            )
            for i, address in enumerate(addresses)
        ]
        return EndpointSet.of(self.service, endpoints, revision)

    def update(self, addresses: Sequence[str]) -> None:
        self.current = self._set(addresses, self.current.revision + 1)
        for callback in list(self._subscribers):
            callback(self.current)

    def subscribe(self, callback: Callable[[EndpointSet], None]) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)
