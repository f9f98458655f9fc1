"""The floors: bare echo servers with no domain code, one per transport (and,
where the optional pygrpc-native is installed, a second bare gRPC server).

Each answers GetQuote with a constant Quote for the requested symbol, the same
request and response shapes as MarketDataService, so the very same driver
configuration measures the floor and the real service. A scenario's figure next
to its transport's floor shows how much of the cost is the transport itself.
Both count the calls they answered (`Count`, `/count`) so load generators that
only see HTTP statuses can be checked against the server.
"""

# Each transport's floor, as bench/deploy.py's Floor names it: the pair that
# gRPC/REST ratios and "of its floor" shares use. Another bare server (bare
# pygrpc-native) is measured beside them and paired with nothing.
REFERENCE_FLOORS = ("bare grpc.aio", "bare aiohttp+orjson")
