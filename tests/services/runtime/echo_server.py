"""A tiny service on the real runtime, for tests of the runtime itself.

`/test.Echo/Whoami` answers with the serving process id; `/test.Echo/Slow` sleeps
for the number of milliseconds in its request before answering, so a test can
hold a call in flight during a drain.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import grpc

from services.runtime.server import ServiceBinding, run
from services.runtime.settings import ServerSettings, load_settings

SERVICE = "test.Echo"


async def whoami(_request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
    return str(os.getpid()).encode()


async def slow(request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
    await asyncio.sleep(int(request or b"0") / 1000)
    return b"done"


def echo_binding() -> ServiceBinding:
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Whoami": grpc.unary_unary_rpc_method_handler(whoami),
            "Slow": grpc.unary_unary_rpc_method_handler(slow),
        },
    )
    return ServiceBinding(SERVICE, handler, lambda h, server: server.add_generic_rpc_handlers((h,)))


@asynccontextmanager
async def build_services(_settings: ServerSettings) -> AsyncIterator[Sequence[ServiceBinding]]:
    yield [echo_binding()]


if __name__ == "__main__":
    # Plaintext unless a test passes --tls-dir (then with --identity).
    args = sys.argv[1:] if "--tls-dir" in sys.argv else ["--plaintext", *sys.argv[1:]]
    raise SystemExit(run(load_settings(ServerSettings, args), build_services))
