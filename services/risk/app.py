"""RiskService process wiring: its settings and the bindings one worker serves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from clients.trading import RISK
from services.instruments import InstrumentCatalog
from services.risk.accounts import AccountDefaults, RiskBook
from services.risk.grpc_adapter import RiskServicer
from services.runtime.server import ServiceBinding
from services.runtime.settings import ServerSettings
from trading.v1 import risk_pb2_grpc

SERVICE_NAME = "trading.v1.RiskService"

_DEFAULTS = AccountDefaults()


class RiskSettings(ServerSettings):
    """RiskService settings: flags (--initial-cash) or TRADEMESH_RISK_* variables."""

    model_config = SettingsConfigDict(env_prefix="TRADEMESH_RISK_")

    port: int = Field(50052, ge=0, le=65535, description="port to listen on; 0 picks a free one")
    initial_cash: int = Field(
        _DEFAULTS.initial_cash, ge=0, description="cash a new account opens with, minor units"
    )
    max_order_quantity: int = Field(
        _DEFAULTS.max_order_quantity, gt=0, description="largest quantity of a single order"
    )
    max_order_notional: int = Field(
        _DEFAULTS.max_order_notional,
        gt=0,
        description="largest price x quantity of a single order (MARKET at the band top)",
    )
    max_position: int = Field(
        _DEFAULTS.max_position,
        gt=0,
        description="largest absolute position per instrument, counting working orders",
    )

    @field_validator("workers")
    @classmethod
    def _one_worker(cls, workers: int) -> int:
        # Accounts and reservations live in this process's memory: two workers
        # would each hold half the reservations and double every account's cash.
        if workers != 1:
            raise ValueError(
                f"RiskService keeps every account in one process, so it runs with workers=1 "
                f"(got {workers}); add capacity by running more instances sharded by account"
            )
        return workers

    @property
    def account_defaults(self) -> AccountDefaults:
        return AccountDefaults(
            initial_cash=self.initial_cash,
            max_order_quantity=self.max_order_quantity,
            max_order_notional=self.max_order_notional,
            max_position=self.max_position,
        )


@asynccontextmanager
async def build_services(settings: RiskSettings) -> AsyncIterator[list[ServiceBinding]]:
    """One RiskBook per process; it holds no resources to close."""
    book = RiskBook(InstrumentCatalog.default(), settings.account_defaults)
    yield [
        ServiceBinding(
            SERVICE_NAME,
            RiskServicer(book),
            risk_pb2_grpc.add_RiskServiceServicer_to_server,
            registry_name=RISK.service,
        )
    ]
