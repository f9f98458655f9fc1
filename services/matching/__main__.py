"""Runs the MatchingEngine: price-time priority order books, on port 50053 by default.

python -m services.matching --port 50053 --feed-queue-size 100000
python -m services.matching --protocol rest   # the same service over HTTP/JSON
"""

from __future__ import annotations

from services.matching.app import MatchingSettings, build_services
from services.runtime.server import run
from services.runtime.settings import load_settings


def main() -> None:
    settings = load_settings(MatchingSettings)
    # One worker only: the order books live in this process (MatchingSettings refuses more).
    if settings.protocol == "rest":
        # Imported here: a gRPC process does not load FastAPI.
        from services.matching.rest_app import build_rest_services
        from services.runtime.rest.server import run_rest

        raise SystemExit(run_rest(settings, build_rest_services))
    raise SystemExit(run(settings, build_services))


if __name__ == "__main__":
    main()
