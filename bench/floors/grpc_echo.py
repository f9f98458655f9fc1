"""A bare grpc.aio server answering GetQuote: no interceptors, health or TLS.

python -m bench.floors.grpc_echo --port 20123
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time

import grpc

from trading.v1 import common_pb2, marketdata_pb2

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


def handlers(floor: EchoFloor) -> list[grpc.GenericRpcHandler]:
    quote = grpc.method_handlers_generic_handler(
        "trading.v1.MarketDataService",
        {
            "GetQuote": grpc.unary_unary_rpc_method_handler(
                floor.get_quote,
                request_deserializer=marketdata_pb2.GetQuoteRequest.FromString,
                response_serializer=common_pb2.Quote.SerializeToString,
            )
        },
    )
    count = grpc.method_handlers_generic_handler(
        "bench.Floor", {"Count": grpc.unary_unary_rpc_method_handler(floor.counted)}
    )
    return [quote, count]


async def serve(host: str, port: int) -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(handlers(EchoFloor()))
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
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
