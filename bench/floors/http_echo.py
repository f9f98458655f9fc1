"""A bare aiohttp + uvloop + orjson server answering GET /v1/quotes/{symbol}:
the lean REST floor (no framework validation, no middleware, no TLS).

python -m bench.floors.http_echo --port 20124
"""

from __future__ import annotations

import argparse
import time

import orjson
import uvloop
from aiohttp import web

_JSON = "application/json"


def build_app() -> web.Application:
    count = 0

    async def get_quote(request: web.Request) -> web.Response:
        nonlocal count
        count += 1
        body = {
            "symbol": request.match_info["symbol"],
            "bid_price": 18_899,
            "bid_quantity": 10,
            "ask_price": 18_901,
            "ask_quantity": 10,
            "last_price": 18_900,
            "last_quantity": 1,
            "volume": 1_000,
            "trade_count": 100,
            "timestamp_ns": time.time_ns(),
            "sequence": count,
        }
        return web.Response(body=orjson.dumps(body), content_type=_JSON)

    async def counted(_request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps({"count": count}), content_type=_JSON)

    app = web.Application()
    app.router.add_get("/v1/quotes/{symbol}", get_quote)
    app.router.add_get("/count", counted)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # aiohttp sets TCP_NODELAY on its sockets: no Nagle delay on small replies.
    web.run_app(
        build_app(),
        host=args.host,
        port=args.port,
        print=None,
        access_log=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
