"""Runs OrderService: the idempotent, durable edge, on port 50051 by default.

python -m services.orders --port 50051 --risk-address 127.0.0.1:50052 \
    --matching-address 127.0.0.1:50053 --db-path var/orders.db --workers 4
python -m services.orders --protocol rest   # the same service over HTTP/JSON
"""

from __future__ import annotations

from services.orders.app import OrderSettings, build_services
from services.runtime.server import run
from services.runtime.settings import load_settings


def main() -> None:
    settings = load_settings(OrderSettings)
    # Several workers may serve: they share the order store (one SQLite file in
    # WAL mode), and each opens its own channels and store after the fork.
    if settings.protocol == "rest":
        # Imported here: a gRPC process does not load FastAPI.
        from services.orders.rest_app import build_rest_services
        from services.runtime.rest.server import run_rest

        raise SystemExit(run_rest(settings, build_rest_services))
    raise SystemExit(run(settings, build_services))


if __name__ == "__main__":
    main()
