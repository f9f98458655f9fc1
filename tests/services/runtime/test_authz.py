"""Authorization by certificate identity: the policy, and real calls over mTLS."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.matching import app as matching_app
from services.runtime.authz_policy import AuthzPolicy, PolicyError
from services.runtime.interceptors.authz import AuthzInterceptor, peer_identity
from services.runtime.server import serving
from tests.services.runtime.tls_support import (
    bytes_method,
    bytes_server_over_tls,
    channel_as,
    make_pki,
    risk_over_tls,
    write_policy,
)
from trading.v1 import common_pb2, matching_pb2, matching_pb2_grpc, risk_pb2, risk_pb2_grpc

RISK = "/trading.v1.RiskService/"
MATCHING = "/trading.v1.MatchingEngine/"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # "probe": a certificate of the mesh CA that the policy does not name.
    return make_pki(tmp_path_factory.mktemp("pki"), identities=["probe"])


def reserve(account: str = "acc-1", rid: str = "r-1") -> risk_pb2.ReserveRequest:
    return risk_pb2.ReserveRequest(
        reservation_id=rid,
        account_id=account,
        symbol="AAPL",
        side=common_pb2.SIDE_BUY,
        quantity=10,
        price=19_000,
    )


# -- the built-in policy -------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "identities"),
    [
        ("/trading.v1.OrderService/PlaceOrder", {"client"}),
        ("/trading.v1.MarketDataService/StreamQuotes", {"client"}),
        (MATCHING + "GetBook", {"client", "orders"}),
        (MATCHING + "Submit", {"orders"}),
        (MATCHING + "Cancel", {"orders"}),
        (MATCHING + "StreamEvents", {"orders", "marketdata"}),
        (MATCHING + "StreamEventBatches", {"orders", "marketdata"}),
        (RISK + "GetAccount", {"client", "orders"}),
        (RISK + "Reserve", {"orders"}),
        (RISK + "ApplyFill", {"orders"}),
        ("/trading.v1.Unknown/Anything", set()),
    ],
)
def test_the_built_in_policy(method: str, identities: set[str]) -> None:
    policy = AuthzPolicy.load()
    assert policy.identities_for(method) == identities
    assert not policy.is_open(method)


def test_probes_and_reflection_are_open() -> None:
    policy = AuthzPolicy.load()
    assert policy.is_open("/grpc.health.v1.Health/Check")
    assert policy.is_open("/grpc.health.v1.Health/Watch")
    assert policy.is_open("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")


def test_a_bad_policy_file_names_itself(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"allow": {"client": "trading.v1.OrderService"}}')
    with pytest.raises(PolicyError, match=r"broken\.json: allow\['client'\] must be a list"):
        AuthzPolicy.load(broken)
    with pytest.raises(PolicyError, match="cannot read"):
        AuthzPolicy.load(tmp_path / "missing.json")


# -- over mTLS -----------------------------------------------------------------


async def test_the_wrong_identity_is_denied_naming_identity_and_method(
    pki: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with risk_over_tls(pki) as address, channel_as(pki, "client", address) as channel:
        with caplog.at_level(logging.WARNING), pytest.raises(grpc.aio.AioRpcError) as caught:
            await risk_pb2_grpc.RiskServiceStub(channel).Reserve(reserve(), timeout=5)
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.details() == (
        "identity 'client' may not call /trading.v1.RiskService/Reserve"
    )
    denials = [r.getMessage() for r in caplog.records if r.name.endswith("authz")]
    assert len(denials) == 1
    assert "'client' may not call /trading.v1.RiskService/Reserve" in denials[0]


async def test_the_right_identity_is_served(pki: Path) -> None:
    async with risk_over_tls(pki) as address:
        async with channel_as(pki, "orders", address) as channel:
            reply = await risk_pb2_grpc.RiskServiceStub(channel).Reserve(reserve(), timeout=5)
            assert reply.reservation.reservation_id == "r-1"
        async with channel_as(pki, "client", address) as channel:  # GetAccount: open to clients
            account = await risk_pb2_grpc.RiskServiceStub(channel).GetAccount(
                risk_pb2.GetAccountRequest(account_id="acc-1"), timeout=5
            )
            assert account.account_id == "acc-1"


async def test_health_is_open_to_any_certificate_of_the_mesh(pki: Path) -> None:
    request = health_pb2.HealthCheckRequest(service="trading.v1.RiskService")
    async with risk_over_tls(pki) as address:
        for identity in ("probe", "marketdata", "client"):
            async with channel_as(pki, identity, address) as channel:
                reply = await health_pb2_grpc.HealthStub(channel).Check(request, timeout=5)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
        async with channel_as(pki, "probe", address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await risk_pb2_grpc.RiskServiceStub(channel).GetAccount(
                    risk_pb2.GetAccountRequest(account_id="acc-1"), timeout=5
                )
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "identity 'probe'" in (caught.value.details() or "")


async def test_streams_are_authorized_too(pki: Path) -> None:
    """Market data may follow the engine's feed but not submit; clients may do neither."""
    settings = matching_app.MatchingSettings(port=0, tls_dir=pki)
    request = matching_pb2.StreamEventsRequest(symbols=["AAPL"])
    async with serving(matching_app.build_services, settings) as address:
        async with channel_as(pki, "marketdata", address, "matching") as channel:
            stub = matching_pb2_grpc.MatchingEngineStub(channel)
            feed = stub.StreamEvents(request)
            first = await feed.read()
            assert first.HasField("quote")
            feed.cancel()
            with pytest.raises(grpc.aio.AioRpcError) as submit:
                await stub.Submit(matching_pb2.SubmitRequest(order_id="o-1"), timeout=5)
        async with channel_as(pki, "client", address, "matching") as channel:
            stream = matching_pb2_grpc.MatchingEngineStub(channel).StreamEvents(request)
            with pytest.raises(grpc.aio.AioRpcError) as follow:
                await stream.read()
    assert submit.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "'marketdata' may not call /trading.v1.MatchingEngine/Submit" in submit.value.details()
    assert follow.value.code() is grpc.StatusCode.PERMISSION_DENIED


async def test_a_policy_file_replaces_the_built_in_one(pki: Path, tmp_path: Path) -> None:
    policy = write_policy(tmp_path, {"client": ["trading.v1.RiskService/Reserve"]})
    async with (
        risk_over_tls(pki, authz_policy=policy) as address,
        channel_as(pki, "client", address) as channel,
    ):
        stub = risk_pb2_grpc.RiskServiceStub(channel)
        assert (
            await stub.Reserve(reserve(rid="r-2"), timeout=5)
        ).reservation.reservation_id == "r-2"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetAccount(risk_pb2.GetAccountRequest(account_id="acc-1"), timeout=5)
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED


async def test_the_check_costs_microseconds_per_call(pki: Path, tmp_path: Path) -> None:
    """Times the authorization wrapper against the real auth context of a TLS call."""
    policy = AuthzPolicy.load()
    interceptor = AuthzInterceptor(policy)

    async def nothing(_request: object, _context: object) -> bytes:
        return b""

    check = interceptor.wrap_unary_response(nothing, RISK + "GetAccount")

    async def measure(_request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        rounds = 20_000
        started = time.perf_counter()
        for _ in range(rounds):
            await check(None, context)
        checked = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(rounds):
            await nothing(None, context)
        bare = time.perf_counter() - started
        assert peer_identity(context) == "client"
        return f"{(checked - bare) / rounds * 1e6:.2f}".encode()

    binding = bytes_method("test.Authz", "Measure", measure)
    allowed = write_policy(tmp_path, {"client": ["test.Authz"]})
    async with (
        bytes_server_over_tls(pki, binding, allowed) as address,
        channel_as(pki, "client", address) as channel,
    ):
        micros = float(await channel.unary_unary("/test.Authz/Measure")(b"", timeout=30))
    print(f"authorization check: {micros:.2f} µs per call")
    assert micros < 50, "a per-call authorization check should cost a few microseconds"
