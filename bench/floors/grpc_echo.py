"""A bare gRPC server answering GetQuote: no interceptors, health or TLS.

python -m bench.floors.grpc_echo --port 20123                          # grpc.aio
python -m bench.floors.grpc_echo --port 20123 --server pygrpc-native   # optional extra

grpc.aio is the gRPC floor (the one REST is put against). pygrpc-native (the
`native` extra, services/runtime/native_server.py) is a second bare floor with
the same servicer: what the Python gRPC stack itself costs when its HTTP/2 and
gRPC framing run in Rust.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from typing import Any

import grpc

from trading.v1 import common_pb2, marketdata_pb2

SERVERS = ("grpc.aio", "pygrpc-native")
GET_QUOTE = "/trading.v1.MarketDataService/GetQuote"
COUNT = "/bench.Floor/Count"  # the calls answered so far, as decimal ASCII bytes


class EchoFloor:
    def __init__(self) -> None:
        self.count = 0

    async def get_quote(
        self, request: marketdata_pb2.GetQuoteRequest, _context: grpc.aio.ServicerContext
    ) -> common_pb2.Quote:
        self.count += 1
        return common_pb2.Quote(
            symbol=request.symbol,
            bid_price=18_899,
            bid_quantity=10,
            ask_price=18_901,
            ask_quantity=10,
            last_price=18_900,
            last_quantity=1,
            volume=1_000,
            trade_count=100,
            timestamp_ns=time.time_ns(),
            sequence=self.count,
        )

    async def counted(self, _request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
        return str(self.count).encode()


def method_handlers(floor: EchoFloor) -> dict[str, dict[str, grpc.RpcMethodHandler]]:
    """Each service's methods by name."""
    get_quote = grpc.unary_unary_rpc_method_handler(
        floor.get_quote,
        request_deserializer=marketdata_pb2.GetQuoteRequest.FromString,
        response_serializer=common_pb2.Quote.SerializeToString,
    )
    return {
        "trading.v1.MarketDataService": {"GetQuote": get_quote},
        "bench.Floor": {"Count": grpc.unary_unary_rpc_method_handler(floor.counted)},
    }


def handlers(floor: EchoFloor) -> list[grpc.GenericRpcHandler]:
    return [
        grpc.method_handlers_generic_handler(service, methods)
        for service, methods in method_handlers(floor).items()
    ]


def make_server(kind: str, floor: EchoFloor) -> Any:
    """A bare `kind` server (one of SERVERS) with the floor's methods added."""
    if kind == "pygrpc-native":
        import pygrpc_native.aio

        server = pygrpc_native.aio.server()
        # Registered, not generic: pygrpc-native serves registered unary methods
        # itself and would send generic ones to its grpc.aio fallback.
        for service, methods in method_handlers(floor).items():
            server.add_registered_method_handlers(service, methods)
        return server
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(handlers(floor))
    return server


async def serve(host: str, port: int, kind: str = "grpc.aio") -> None:
    server = make_server(kind, EchoFloor())
    server.add_insecure_port(f"{host}:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server", choices=SERVERS, default="grpc.aio")
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.server))


if __name__ == "__main__":
    main()
