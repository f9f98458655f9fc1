"""Runs MarketDataService: quotes and trades fanned out from the matching engine's
feed, on port 50054 by default.

python -m services.marketdata --port 50054 --matching-address 127.0.0.1:50053 --workers 2
python -m services.marketdata --protocol rest   # the same service over HTTP/JSON
"""

from __future__ import annotations

from services.marketdata.app import MarketDataSettings, build_services
from services.runtime.server import run
from services.runtime.settings import load_settings


def main() -> None:
    settings = load_settings(MarketDataSettings)
    # Workers > 1 are fine: each follows the engine's feed on its own (forked first,
    # before any grpc object exists: grpc/grpc#16001).
    if settings.protocol == "rest":
        # Imported here: a gRPC process does not load FastAPI.
        from services.marketdata.rest_app import build_rest_services
        from services.runtime.rest.server import run_rest

        raise SystemExit(run_rest(settings, build_rest_services))
    raise SystemExit(run(settings, build_services))


if __name__ == "__main__":
    main()
