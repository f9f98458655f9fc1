"""Runs RiskService: pre-trade limits by account, on port 50052 by default.

python -m services.risk --port 50052 --initial-cash 1000000000
python -m services.risk --protocol rest   # the same service over HTTP/JSON
"""

from __future__ import annotations

from services.risk.app import RiskSettings, build_services
from services.runtime.server import run
from services.runtime.settings import load_settings


def main() -> None:
    settings = load_settings(RiskSettings)
    # One worker only: the accounts live in this process (RiskSettings refuses more).
    if settings.protocol == "rest":
        # Imported here: a gRPC process does not load FastAPI.
        from services.risk.rest_app import build_rest_services
        from services.runtime.rest.server import run_rest

        raise SystemExit(run_rest(settings, build_rest_services))
    raise SystemExit(run(settings, build_services))


if __name__ == "__main__":
    main()
