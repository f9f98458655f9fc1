"""The REST variant's mesh client: the same hops as the gRPC mesh, over HTTP/JSON.

    async with HttpMesh.from_etcd(config, tls=TlsFiles.of("certs", "orders")) as mesh:
        risk = await mesh.pool("risk", balancer="ring_hash")
        status, body = await risk.request("POST", "/v1/reservations", key=account, body=...)

One `aiohttp.ClientSession` per process: a `TCPConnector` keeps connections alive
and pooled per endpoint, so a call costs a request on a warm connection, not a
handshake. Each callee service gets an `HttpPool` of its REST endpoints (from the
registry, protocol "rest", or a static list) and a picker from clients/balancers,
the same policies as the gRPC mesh (clients/trading.py): ring hash by account for
risk and by symbol for matching, so a key lands on the same instance in both
variants when the instance ids are the same.

A call that fails before any response (connection refused or reset, a keep-alive
connection the server had closed) is sent once more to another endpoint: every
trademesh call is idempotent by its key. A refused connection also ejects the
endpoint for a few seconds (clients/resilience/outlier.py), so the next calls,
and the ring, skip it at once. A timeout is not retried: the caller's time is
spent. Responses of any HTTP status are returned as they are; what they mean is
the caller's business (services/runtime/rest/problems.py).

With TLS, every call presents this process's certificate, trusts the mesh CA and
checks that the server holds `<service>.trademesh` (clients/tls.server_name), as
the gRPC channels do. Renewed certificate files are picked up within
CHECK_SECONDS: new connections use them, pooled ones finish their life.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager

import aiohttp
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.aiohttp_client import create_trace_config
from opentelemetry.trace import TracerProvider

from clients.balancers import POLICIES, EndpointStats, Picker
from clients.endpoint_pool import WEIGHT_GRAIN, EndpointSource
from clients.mesh import SourceFactory, etcd_sources
from clients.resilience.outlier import OutlierDetector
from clients.static import StaticEndpoints
from clients.tls import CHECK_SECONDS, ReloadingTls, TlsFiles, server_name
from discovery import DEFAULT_PREFIX, Endpoint, EndpointSet, EtcdConfig

_LOGGER = logging.getLogger(__name__)

# Keep-alive connections per endpoint. Calls beyond it wait for a free connection
# (HTTP/1.1 has one request in flight per connection); a few hundred covers the
# concurrency one process drives at a peer without exhausting its file descriptors.
LIMIT_PER_HOST = 256
# How long an idle pooled connection is kept (uvicorn closes its side after 5 s
# by default; a server may set --timeout-keep-alive higher).
KEEPALIVE_SECONDS = 30.0
DNS_CACHE_SECONDS = 300
# A refused connection takes the endpoint out of the picker this long (doubling on
# repeats, up to EJECTION_MAX_SECONDS): long enough to stop hammering a stopped
# process, short enough that a restarted one is back soon. The registry removes
# endpoints that are gone for good.
EJECTION_SECONDS = 5.0
EJECTION_MAX_SECONDS = 60.0
# Streams (SSE) have no total deadline; this bounds the connect and the headers.
STREAM_CONNECT_SECONDS = 5.0

JSON_HEADERS: Mapping[str, str] = {"content-type": "application/json"}


def lean_trace_config(tracer_provider: TracerProvider | None = None) -> aiohttp.TraceConfig:
    """OpenTelemetry's aiohttp client spans, skipped where they would not record.

    The stock hooks cost ~60 µs per request even when the span is not sampled
    (URL redaction, attribute dicts, header capture: bench/profiles/tracing.md).
    A request under an unsampled parent (most, at the default 1% sampling) only
    needs its traceparent; the stock hooks run for every other request (a sampled
    parent, or none: then the sampler decides), so recorded spans are unchanged.
    Their end and exception hooks do nothing for a request whose start was skipped.
    """
    config = create_trace_config(tracer_provider=tracer_provider)
    stock_start = config.on_request_start[0]

    async def on_request_start(
        session: aiohttp.ClientSession, ctx: object, params: aiohttp.TraceRequestStartParams
    ) -> None:
        parent = trace.get_current_span().get_span_context()
        if parent.is_valid and not parent.trace_flags.sampled:
            propagate.inject(params.headers)
            return
        await stock_start(session, ctx, params)

    config.on_request_start[0] = on_request_start
    return config


class HttpUnreachable(Exception):
    """No answer from `service`: no endpoint, connection failures, or a timeout."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.reason = reason


class HttpTls:
    """The client SSLContext of one identity, rebuilt when its files change
    (looked at on use, at most every `check_seconds`)."""

    def __init__(self, files: TlsFiles, *, check_seconds: float = CHECK_SECONDS) -> None:
        self._tls = ReloadingTls(files)  # fails now, not at the first call
        self._check_seconds = check_seconds
        self._next_check = time.monotonic() + check_seconds
        self._context = self._build()

    @property
    def files(self) -> TlsFiles:
        return self._tls.files

    def _build(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        context.load_verify_locations(cadata=self._tls.material.ca.decode())
        # The ssl module loads a certificate chain from files only; ReloadingTls has
        # just checked that these hold a matching pair.
        context.load_cert_chain(self._tls.files.cert, self._tls.files.key)
        context.set_alpn_protocols(["http/1.1"])
        return context

    def context(self) -> ssl.SSLContext:
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self._check_seconds
            if self._tls.refresh():
                try:
                    self._context = self._build()
                except (OSError, ssl.SSLError) as exc:  # replaced again meanwhile
                    _LOGGER.warning("keeping the current TLS context for now: %s", exc)
        return self._context


class HttpMember:
    """One REST endpoint: its base URL and the stats pickers read."""

    __slots__ = ("base", "endpoint", "stats")

    def __init__(self, endpoint: Endpoint, scheme: str) -> None:
        self.endpoint = endpoint
        self.base = f"{scheme}://{endpoint.address}"
        self.stats = EndpointStats(
            endpoint.instance_id,
            endpoint.address,
            max(1, round(endpoint.weight / WEIGHT_GRAIN)),
            endpoint.zone,
        )


class HttpPool:
    """The REST endpoints of one service; `request()` picks one per call."""

    def __init__(
        self,
        service: str,
        source: EndpointSource,
        session: aiohttp.ClientSession,
        *,
        balancer: str = "round_robin",
        timeout_seconds: float = 2.0,
        tls: HttpTls | None = None,
    ) -> None:
        self.service = service
        self._source = source
        self._session = session
        self._factory = POLICIES[balancer]
        self._tls = tls
        self._scheme = "https" if tls is not None else "http"
        self._server_hostname = server_name(service) if tls is not None else None
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {timeout_seconds: self._timeout}
        self.outliers = OutlierDetector(
            consecutive_failures=1,
            base_ejection_seconds=EJECTION_SECONDS,
            max_ejection_seconds=EJECTION_MAX_SECONDS,
        )
        self.members: dict[str, HttpMember] = {}
        self.picker: Picker = self._factory([])
        self._listeners: list[Callable[[HttpPool], None]] = []
        self._unsubscribe = source.subscribe(self._on_set)
        self._on_set(source.current)

    # -- picking ----------------------------------------------------------------

    def pick(self, key: str | None = None, avoid: str | None = None) -> HttpMember | None:
        """The member for a call; `avoid` (an instance id that just failed) is
        skipped when the picker offers another."""
        if self.outliers.refresh():
            self._rebuild()
        stats = self.picker.pick(key)
        if stats is None:
            return None
        if stats.key == avoid:
            for _ in range(3):
                other = self.picker.pick(None)
                if other is not None and other.key != avoid:
                    stats = other
                    break
        return self.members.get(stats.key)

    def usable(self) -> list[HttpMember]:
        """Members on the ring now (registered, not ejected)."""
        ejected = self.outliers.ejected()
        return [m for m in self.members.values() if m.endpoint.instance_id not in ejected]

    def on_change(self, listener: Callable[[HttpPool], None]) -> None:
        """Calls `listener(pool)` after every rebuild (membership or ejection)."""
        self._listeners.append(listener)

    # -- calls (hot path) ---------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        body: bytes | None = None,
        params: Mapping[str, str] | None = None,
        timeout_seconds: float | None = None,
        member: HttpMember | None = None,
    ) -> tuple[int, bytes]:
        """(HTTP status, body) of one call to `path` (already URL-safe). `key`
        routes it (ring hash); `member` pins it to one endpoint (no retry then).
        Raises HttpUnreachable when no endpoint answered."""
        timeout = self._timeout if timeout_seconds is None else self._timeout_of(timeout_seconds)
        failed: str | None = None
        reason = "no endpoint is registered; is the service running?"
        for _attempt in range(1 if member is not None else 2):
            target = member or self.pick(key, failed)
            if target is None:
                break
            stats = target.stats
            started = stats.on_start()
            ok = False
            try:
                async with self._session.request(
                    method,
                    target.base + path,
                    data=body,
                    params=params,
                    headers=JSON_HEADERS if body is not None else None,
                    timeout=timeout,
                    ssl=self._tls.context() if self._tls is not None else True,
                    server_hostname=self._server_hostname,
                ) as response:
                    payload = await response.read()
                    status = response.status
                ok = status < 500 and status != 429
                self.outliers.record(stats.key, True)
                return status, payload
            except TimeoutError:
                raise HttpUnreachable(
                    self.service, f"{target.endpoint.address} timed out after {timeout.total} s"
                ) from None
            except aiohttp.ClientConnectorError as exc:
                # Nothing listens there: skip it from now on, not only for this call.
                reason = f"cannot connect to {target.endpoint.address}: {exc.os_error}"
                if self.outliers.record(stats.key, False):
                    self._log_ejection(target)
                    self._rebuild()
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                # Closed or reset before any response (often a pooled connection the
                # server had just closed): nothing was answered, so try again.
                reason = f"{target.endpoint.address} closed the connection: {exc!r}"
            except aiohttp.ClientError as exc:  # a broken response: not retried
                raise HttpUnreachable(
                    self.service, f"{target.endpoint.address} failed: {exc!r}"
                ) from None
            finally:
                stats.on_finish(started, ok)
            failed = stats.key
        raise HttpUnreachable(self.service, reason)

    @asynccontextmanager
    async def stream(
        self,
        member: HttpMember,
        path: str,
        params: Sequence[tuple[str, str]] = (),
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """An open streaming GET (SSE) to one member; the caller reads the
        response (iter_sse) and checks its status. Raises HttpUnreachable when
        it cannot be opened."""
        timeout = aiohttp.ClientTimeout(
            total=None, connect=STREAM_CONNECT_SECONDS, sock_connect=STREAM_CONNECT_SECONDS
        )
        try:
            response = await self._session.get(
                member.base + path,
                params=params,
                headers={"accept": "text/event-stream"},
                timeout=timeout,
                ssl=self._tls.context() if self._tls is not None else True,
                server_hostname=self._server_hostname,
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise HttpUnreachable(
                self.service, f"cannot open a stream to {member.endpoint.address}: {exc!r}"
            ) from None
        try:
            yield response
        finally:
            response.close()  # a stream is not read to its end: drop its connection

    def _timeout_of(self, seconds: float) -> aiohttp.ClientTimeout:
        found = self._timeouts.get(seconds)
        if found is None:
            found = self._timeouts[seconds] = aiohttp.ClientTimeout(total=seconds)
        return found

    # -- changes ------------------------------------------------------------------

    def _on_set(self, endpoint_set: EndpointSet) -> None:
        wanted = {e.instance_id: e for e in endpoint_set if e.protocol == "rest"}
        members: dict[str, HttpMember] = {}
        for instance_id, endpoint in wanted.items():
            member = self.members.get(instance_id)
            if member is None or member.endpoint != endpoint:  # new, moved or re-weighted
                member = HttpMember(endpoint, self._scheme)
            members[instance_id] = member
        self.members = members
        self.outliers.set_endpoints(members)
        self._rebuild()

    def _rebuild(self) -> None:
        self.picker = self._factory([m.stats for m in self.usable()])
        for listener in list(self._listeners):
            listener(self)

    def _log_ejection(self, member: HttpMember) -> None:
        _LOGGER.warning(
            "%s endpoint %s (%s) refused a connection; skipping it for a while",
            self.service,
            member.endpoint.instance_id,
            member.endpoint.address,
        )

    def close(self) -> None:
        self._unsubscribe()


class HttpMesh:
    """The REST mesh of one process: one pooled session, one HttpPool per callee.

    Belongs to the event loop that first uses it (aiohttp sessions cannot cross
    loops); close() closes the session, the pools and the registry watchers."""

    def __init__(
        self,
        sources: SourceFactory,
        *,
        tls: TlsFiles | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
        limit_per_host: int = LIMIT_PER_HOST,
    ) -> None:
        self._sources_for = sources
        self._on_close = on_close
        self._tls = HttpTls(tls) if tls is not None else None
        self._limit_per_host = limit_per_host
        self._session: aiohttp.ClientSession | None = None
        self._sources: dict[str, EndpointSource] = {}
        self._pools: dict[str, HttpPool] = {}

    @classmethod
    def from_etcd(
        cls, config: EtcdConfig, *, prefix: str = DEFAULT_PREFIX, tls: TlsFiles | None = None
    ) -> HttpMesh:
        watch, close = etcd_sources(config, prefix=prefix)
        return cls(watch, tls=tls, on_close=close)

    @classmethod
    def static(
        cls, addresses: Mapping[str, Sequence[str]], *, tls: TlsFiles | None = None
    ) -> HttpMesh:
        async def fixed(service: str) -> EndpointSource:
            if service not in addresses:
                raise KeyError(f"no addresses given for service {service!r}")
            return StaticEndpoints(service, addresses[service], protocol="rest")

        return cls(fixed, tls=tls)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=0,  # bounded per host instead
                limit_per_host=self._limit_per_host,
                ttl_dns_cache=DNS_CACHE_SECONDS,
                keepalive_timeout=KEEPALIVE_SECONDS,
                force_close=False,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                # Callers send bytes and read bytes (orjson both ways); no cookies,
                # no redirects between services.
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                raise_for_status=False,
                # A client span per request and the W3C traceparent header, from the
                # process's tracer provider (a no-op until one is set up).
                trace_configs=[lean_trace_config()],
            )
        return self._session

    async def source(self, service: str) -> EndpointSource:
        found = self._sources.get(service)
        if found is None:
            found = self._sources[service] = await self._sources_for(service)
        return found

    async def pool(
        self, service: str, *, balancer: str = "round_robin", timeout_seconds: float = 2.0
    ) -> HttpPool:
        """The pool of `service`; the first call for a service fixes its policy."""
        found = self._pools.get(service)
        if found is None:
            source = await self.source(service)
            found = self._pools[service] = HttpPool(
                service,
                source,
                self.session,
                balancer=balancer,
                timeout_seconds=timeout_seconds,
                tls=self._tls,
            )
        return found

    async def close(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        if self._on_close is not None:
            await self._on_close()

    async def __aenter__(self) -> HttpMesh:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def iter_sse(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, bytes]]:
    """The (event type, data) of each Server-Sent Event of a response ("message"
    when it names none); comments (keep-alives) are skipped."""
    event, data = "message", b""
    async for raw in response.content:
        line = raw.rstrip(b"\r\n")
        if not line:
            if data:
                yield event, data
            event, data = "message", b""
        elif line.startswith(b"data:"):
            chunk = line[5:].removeprefix(b" ")
            data = data + b"\n" + chunk if data else chunk
        elif line.startswith(b"event:"):
            event = line[6:].strip().decode()
        # ":" comments and fields this client does not use (id, retry) are ignored


__all__ = [
    "HttpMember",
    "HttpMesh",
    "HttpPool",
    "HttpTls",
    "HttpUnreachable",
    "iter_sse",
]
