"""Typed process settings: one object per process, from flags and environment.

Every service subclasses `ServerSettings`, adding its own fields and an
environment prefix (TRADEMESH_RISK_, ...). Flags are the field names in kebab
case (`--grace-seconds 5`); a flag wins over the environment, which wins over the
default. Ranges live beside the defaults, so a bad value fails at start-up with a
sentence that names the setting.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, CliApp, SettingsConfigDict

from discovery import EtcdConfig, EtcdTls

MiB = 1024 * 1024


class ServerSettings(BaseSettings):
    """What every trademesh server process needs, whatever service it runs."""

    model_config = SettingsConfigDict(
        env_prefix="TRADEMESH_",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        extra="ignore",
    )

    protocol: Literal["grpc", "rest"] = Field(
        "grpc",
        description="grpc: serve gRPC (HTTP/2, protobuf); rest: serve the same service as "
        "HTTP/JSON (OpenAPI at /openapi.json), registered with protocol 'rest'",
    )
    host: str = Field("127.0.0.1", description="address to listen on ('::' or '0.0.0.0' for all)")
    port: int = Field(0, ge=0, le=65535, description="port to listen on; 0 picks a free one")
    workers: int = Field(
        1, ge=1, le=64, description="processes sharing the port (SO_REUSEPORT), e.g. one per core"
    )
    grace_seconds: float = Field(
        10.0, ge=0, description="on SIGTERM, how long in-flight calls may finish before cancel"
    )
    max_message_bytes: int = Field(
        4 * MiB, ge=64 * 1024, description="largest message the server sends or receives"
    )
    # Load shedding: past this many calls in flight (streams included), new ones
    # fail fast with RESOURCE_EXHAUSTED, which the mesh retries on another
    # instance, instead of queueing until every caller times out.
    max_concurrent_rpcs: int | None = Field(
        5_000,
        ge=1,
        description="calls in flight per process before new ones get RESOURCE_EXHAUSTED",
    )
    grpc_server: Literal["grpcio", "native"] = Field(
        "grpcio",
        description="grpcio: grpc.aio's server; native: pygrpc-native's (experimental, "
        "plaintext only, pip install -e '.[native]': services/runtime/native_server.py)",
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")

    # Telemetry (services/runtime/telemetry/). Traces go by OTLP when the standard
    # OTEL_EXPORTER_OTLP_* variables name an endpoint, else to `trace_file`;
    # sampling follows OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG.
    log_format: Literal["json", "text"] = Field(
        "json", description="json: one object per line with trace and span ids; text: plain"
    )
    metrics_port: int = Field(
        0,
        ge=-1,
        le=65535,
        description="Prometheus /metrics port; 0: the gRPC port + 1000 (+ worker index); -1: "
        "off. REST serves /metrics on its own port unless -1",
    )
    trace_file: Path | None = Field(
        None, description="append finished spans here as JSON lines when no OTLP endpoint is set"
    )
    channelz: bool = Field(False, description="serve grpc.channelz.v1 for live debugging")

    # Mutual TLS (services/runtime/tls.py): by default a process serves and calls
    # its peers only over mTLS, as `identity`, with the files `make certs` writes.
    plaintext: bool = Field(
        False,
        description="serve and call peers without TLS (local debugging only); a process "
        "serves either TLS or plaintext, never both",
    )
    tls_dir: Path = Field(
        Path("certs"),
        description="mTLS files: ca.pem, <identity>.pem, <identity>-key.pem (make certs); "
        "reloaded when they change",
    )
    identity: str = Field(
        "",
        description="this process's certificate identity (spiffe://trademesh/<identity>); "
        "default: the service's registry name",
    )
    authz_policy: Path | None = Field(
        None,
        description="JSON authorization policy replacing the built-in one "
        "(services/runtime/authz_policy.json)",
    )

    # Discovery. With etcd endpoints the server registers itself under a lease and
    # finds its peers there; without, peers come from the static address flags.
    etcd_endpoints: str = Field(
        "", description="etcd to register in and find peers through: host:port[,host:port]"
    )
    etcd_ca_file: str | None = Field(None, description="CA bundle to verify etcd's TLS")
    etcd_cert_file: str | None = Field(None, description="client certificate for etcd (mTLS)")
    etcd_key_file: str | None = Field(None, description="client key for etcd (mTLS)")
    registry_prefix: str = Field("/trademesh/services/", description="etcd key prefix")
    instance_id: str = Field(
        "", description="this instance's name in the registry; default <service>-<port>"
    )
    advertise_address: str = Field(
        "", description="address peers dial; default host:port (127.0.0.1 for a wildcard host)"
    )
    zone: str = Field("", description="locality, registered for zone-aware balancing")
    weight: int = Field(100, ge=1, le=10_000, description="relative share of traffic (100 = one)")
    lease_ttl_seconds: int = Field(
        5, ge=2, le=60, description="a crashed instance leaves the registry after this long"
    )

    @model_validator(mode="after")
    def _one_transport(self) -> ServerSettings:
        if self.plaintext and "tls_dir" in self.model_fields_set:
            raise ValueError(
                "--plaintext and --tls-dir both given: a process serves either mTLS (drop "
                "--plaintext) or plaintext (drop --tls-dir), never both"
            )
        if self.grpc_server == "native" and not self.plaintext:
            raise ValueError(
                "--grpc-server native serves plaintext only (pygrpc-native has no TLS): add "
                "--plaintext, or drop --grpc-server native to serve mTLS with grpcio"
            )
        if not self.identity:
            # The service's environment prefix is its registry name: TRADEMESH_RISK_ -> risk.
            prefix = str(self.model_config.get("env_prefix", ""))
            self.identity = prefix.removeprefix("TRADEMESH_").strip("_").lower()
        return self

    @property
    def service_name(self) -> str:
        """The registry name of the service these settings are for ("risk"), from
        the environment prefix; it names the process in traces and logs."""
        prefix = str(self.model_config.get("env_prefix", ""))
        return prefix.removeprefix("TRADEMESH_").strip("_").lower() or "trademesh"

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def etcd_config(self) -> EtcdConfig | None:
        if not self.etcd_endpoints:
            return None
        tls = None
        if self.etcd_ca_file or self.etcd_cert_file:
            tls = EtcdTls(self.etcd_ca_file, self.etcd_cert_file, self.etcd_key_file)
        return EtcdConfig.from_endpoints(self.etcd_endpoints, tls=tls)


S = TypeVar("S", bound=ServerSettings)


def load_settings(cls: type[S], argv: Sequence[str] | None = None) -> S:
    """Builds `cls` from command-line flags (default: sys.argv) and environment.

    A bad value ends the process with exit code 2 and one line per problem, naming
    the setting, instead of a traceback.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return CliApp.run(cls, cli_args=args)
    except ValidationError as exc:
        problems = [
            f"  {'.'.join(str(p) for p in error['loc']) or 'settings'}: {error['msg']}"
            for error in exc.errors()
        ]
        print("invalid settings:", *problems, sep="\n", file=sys.stderr)
        raise SystemExit(2) from None
