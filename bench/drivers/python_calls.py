"""The calls the Python driver makes, one factory per (client, call) pair.

What a Python caller of each transport gets:
- "python-mesh": the project's mesh channel (clients.mesh.Mesh.static, with mTLS
  through clients.tls.SecureChannels when the target serves it) under the
  generated stubs;
- "python-grpc": a plain grpc.aio channel (for the floor, which has no health
  service for the mesh to watch);
- "python-http": one aiohttp ClientSession (keep-alive pool, orjson).

A call is `async def call(n) -> int`: it sends request n of the run, checks the
answer and returns how many items failed inside an answered batch (0 for single
calls); a failed call raises.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import orjson

from bench.payloads import QUOTE_SYMBOL, OrderFlow
from clients.channel_options import plaintext_channel
from clients.mesh import Mesh
from clients.tls import SecureChannels, TlsFiles, server_name
from clients.trading import MARKETDATA, ORDERS
from trading.v1 import (
    marketdata_pb2,
    marketdata_pb2_grpc,
    orders_pb2,
    orders_pb2_grpc,
)

Call = Callable[[int], Awaitable[int]]
CALL_TIMEOUT_S = 10.0  # every call is bounded; a stuck server shows as errors


class CallFailed(Exception):
    """A call the server answered with an error, or an HTTP status that is not 2xx."""


def _tls_files(spec: dict[str, Any]) -> TlsFiles | None:
    tls = spec.get("tls")
    return TlsFiles(*(Path(tls[k]) for k in ("ca", "cert", "key"))) if tls else None


def _ssl_context(files: TlsFiles) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(files.ca))
    context.load_cert_chain(str(files.cert), str(files.key))
    return context


class Clients:
    """The channels or session of one driver process, closed together."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.client: str = spec["client"]
        self.address: str = spec["address"]
        self.service: str = spec.get("service", "orders")
        self.tls = _tls_files(spec)
        self.flow = OrderFlow(spec.get("tag", "bench"), accounts=spec.get("accounts", 200))
        self._stack = AsyncExitStack()
        self._channel: Any = None
        self.session: aiohttp.ClientSession | None = None
        self.base = ""
        self.server_hostname: str | None = None

    async def __aenter__(self) -> Clients:
        if self.client == "python-mesh":
            channels: Any = SecureChannels(self.tls) if self.tls else plaintext_channel
            mesh = Mesh.static({self.service: [self.address]}, channel_factory=channels)
            await self._stack.enter_async_context(mesh)
            policy = ORDERS if self.service == "orders" else MARKETDATA
            self._channel = await mesh.channel(policy)
        elif self.client == "python-grpc":
            if self.tls:
                material = self.tls.load()
                credentials = grpc.ssl_channel_credentials(material.ca, material.key, material.cert)
                options = [("grpc.ssl_target_name_override", server_name(self.service))]
                self._channel = grpc.aio.secure_channel(self.address, credentials, options)
            else:
                self._channel = grpc.aio.insecure_channel(self.address)
            self._stack.push_async_callback(self._channel.close)
        elif self.client == "python-http":
            scheme = "https" if self.tls else "http"
            self.base = f"{scheme}://{self.address}"
            ssl_arg: ssl.SSLContext | bool = _ssl_context(self.tls) if self.tls else False
            self.server_hostname = server_name(self.service) if self.tls else None
            # One connection per concurrent call (HTTP/1.1), kept alive; limit=0 for streams.
            limit = int(self.spec.get("connections", 0))
            connector = aiohttp.TCPConnector(limit=limit, ssl=ssl_arg, force_close=False)
            self.session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=CALL_TIMEOUT_S),
            )
            self._stack.push_async_callback(self.session.close)
        else:
            raise ValueError(f"unknown client {self.client!r}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()

    # -- unary and batch calls ----------------------------------------------------

    def call(self, name: str, batch: int = 1) -> Call:
        if self.client == "python-http":
            return self._http_call(name, batch)
        return self._grpc_call(name, batch)

    def _grpc_call(self, name: str, batch: int) -> Call:
        if name == "get_quote":
            stub = marketdata_pb2_grpc.MarketDataServiceStub(self._channel)
            request = marketdata_pb2.GetQuoteRequest(symbol=QUOTE_SYMBOL)

            async def get_quote(_n: int) -> int:
                await stub.GetQuote(request, timeout=CALL_TIMEOUT_S)
                return 0

            return get_quote
        orders = orders_pb2_grpc.OrderServiceStub(self._channel)
        flow = self.flow
        if name == "place_order":

            async def place_order(n: int) -> int:
                await orders.PlaceOrder(flow.proto(n), timeout=CALL_TIMEOUT_S)
                return 0

            return place_order
        if name == "order_entry":
            return _OrderEntryStreams(orders, flow, batch).call
        raise ValueError(f"unknown gRPC call {name!r}")

    def _http_call(self, name: str, batch: int) -> Call:
        session, base, hostname = self.session, self.base, self.server_hostname
        assert session is not None
        headers = {"content-type": "application/json"}
        flow = self.flow

        async def send(method: str, url: str, body: bytes | None = None) -> bytes:
            async with session.request(
                method,
                url,
                data=body,
                headers=headers if body is not None else None,
                server_hostname=hostname,
                timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT_S),
            ) as response:
                payload = await response.read()
                if response.status >= 300:
                    raise CallFailed(f"HTTP {response.status}: {payload[:200]!r}")
                return payload

        if name == "get_quote":
            url = f"{base}/v1/quotes/{QUOTE_SYMBOL}"

            async def get_quote(_n: int) -> int:
                orjson.loads(await send("GET", url))
                return 0

            return get_quote
        if name == "place_order":
            url = f"{base}/v1/orders"

            async def place_order(n: int) -> int:
                orjson.loads(await send("POST", url, flow.json(n)))
                return 0

            return place_order
        if name == "order_entry":
            url = f"{base}/v1/orders:batch"

            async def place_batch(n: int) -> int:
                orders = [flow.fields(n * batch + i) for i in range(batch)]
                answer = orjson.loads(await send("POST", url, orjson.dumps({"orders": orders})))
                results = answer["results"]
                if len(results) != batch:
                    raise CallFailed(f"{len(results)} results for {batch} orders")
                return sum(1 for r in results if "placed" not in r)

            return place_batch
        raise ValueError(f"unknown REST call {name!r}")

    # -- streams ------------------------------------------------------------------

    async def quotes(self, symbols: list[str]) -> AsyncIterator[tuple[int, int]]:
        """(timestamp_ns, sequence) of every quote one subscriber receives."""
        if self.client == "python-http":
            assert self.session is not None
            query = "&".join(f"symbols={s}" for s in symbols)
            url = f"{self.base}/v1/quotes:stream?{query}"
            async with self.session.get(url, server_hostname=self.server_hostname) as response:
                if response.status != 200:
                    raise CallFailed(f"HTTP {response.status}")
                async for line in response.content:
                    if line.startswith(b"data:"):
                        quote = orjson.loads(line[5:])
                        yield quote["timestamp_ns"], quote["sequence"]
            return
        stub = marketdata_pb2_grpc.MarketDataServiceStub(self._channel)
        call = stub.StreamQuotes(
            marketdata_pb2.StreamQuotesRequest(symbols=symbols), timeout=3600.0
        )
        try:
            async for quote in call:
                yield quote.timestamp_ns, quote.sequence
        finally:
            call.cancel()


class _OrderEntryStreams:
    """OrderEntry: each concurrent caller keeps its own bidi stream, sending one
    batch and reading its answer before the next (like one REST batch request)."""

    def __init__(self, stub: orders_pb2_grpc.OrderServiceStub, flow: OrderFlow, batch: int) -> None:
        self._stub = stub
        self._flow = flow
        self._batch = batch
        self._idle: list[Any] = []  # open streams not in use

    async def call(self, n: int) -> int:
        stream = self._idle.pop() if self._idle else self._stub.OrderEntry(timeout=3600.0)
        orders = [self._flow.proto(n * self._batch + i) for i in range(self._batch)]
        try:
            await stream.write(orders_pb2.OrderEntryRequest(batch_id=n, orders=orders))
            answer = await stream.read()
        except BaseException:
            stream.cancel()
            raise
        if answer is grpc.aio.EOF:
            raise CallFailed(f"OrderEntry ended: {await stream.code()}")
        self._idle.append(stream)
        if answer.batch_id != n or len(answer.results) != self._batch:
            raise CallFailed(f"batch {answer.batch_id} with {len(answer.results)} results")
        return sum(1 for r in answer.results if r.WhichOneof("outcome") != "placed")
