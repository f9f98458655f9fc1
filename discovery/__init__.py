"""Service discovery on etcd: register an instance under a lease, follow a service's endpoints.

Knows nothing of gRPC or trading. `Registration` keeps one instance's key alive (and puts
it back after etcd loses it); `ServiceWatcher` keeps a live `EndpointSet` of a service and
keeps serving the last one while etcd is unreachable; `LocalEtcd` runs a real etcd on
loopback for `make run` and the tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from discovery.backoff import Backoff
from discovery.endpoint import DEFAULT_PREFIX, Endpoint, EndpointDecodeError
from discovery.endpoint_set import EndpointSet
from discovery.etcd_client import EtcdClient
from discovery.etcd_config import EtcdConfig, EtcdTls
from discovery.etcd_errors import EtcdError, EtcdUnavailable, LeaseNotFound, WatchCompacted
from discovery.registry import DEFAULT_TTL, Registration
from discovery.resolver import ServiceWatcher

if TYPE_CHECKING:
    from discovery.local_cluster import LocalEtcdCluster
    from discovery.local_etcd import LocalEtcd

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_TTL",
    "Backoff",
    "Endpoint",
    "EndpointDecodeError",
    "EndpointSet",
    "EtcdClient",
    "EtcdConfig",
    "EtcdError",
    "EtcdTls",
    "EtcdUnavailable",
    "LeaseNotFound",
    "LocalEtcd",
    "LocalEtcdCluster",
    "Registration",
    "ServiceWatcher",
    "WatchCompacted",
]


def __getattr__(name: str) -> object:
    # Loaded on first use: services importing discovery do not pull in subprocess code,
    # and `python -m discovery.local_etcd` does not find its module already imported
    # (runpy warns about that).
    if name == "LocalEtcd":
        from discovery.local_etcd import LocalEtcd

        return LocalEtcd
    if name == "LocalEtcdCluster":
        from discovery.local_cluster import LocalEtcdCluster

        return LocalEtcdCluster
    raise AttributeError(f"module 'discovery' has no attribute {name!r}")
