"""grpc.channelz.v1 on a server when --channelz is given, listed in reflection."""

from __future__ import annotations

import grpc
import pytest
from grpc_channelz.v1 import channelz_pb2, channelz_pb2_grpc

from services.runtime.authz_policy import AuthzPolicy
from services.runtime.server import serving_server
from services.runtime.settings import ServerSettings
from services.runtime.telemetry.channelz import SERVICE_NAME
from tests.services.runtime.echo_server import echo_binding


async def test_channelz_answers_when_enabled(run_grpcurl) -> None:
    settings = ServerSettings(port=0, plaintext=True, channelz=True)
    async with (
        serving_server([echo_binding()], settings) as server,
        grpc.aio.insecure_channel(server.address) as channel,
    ):
        channelz = channelz_pb2_grpc.ChannelzStub(channel)
        servers = await channelz.GetServers(channelz_pb2.GetServersRequest())
        assert servers.server, "this process's server is listed"
        assert any(s.listen_socket for s in servers.server)
        await channelz.GetTopChannels(channelz_pb2.GetTopChannelsRequest())
        listed = await run_grpcurl(server.address, "list")
        assert listed.returncode == 0, listed.stderr
        assert SERVICE_NAME in listed.stdout.split()


async def test_channelz_is_off_by_default() -> None:
    async with (
        serving_server([echo_binding()]) as server,
        grpc.aio.insecure_channel(server.address) as channel,
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await channelz_pb2_grpc.ChannelzStub(channel).GetServers(
                channelz_pb2.GetServersRequest()
            )
        assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED


def test_channelz_is_open_to_any_certificate_of_the_mesh() -> None:
    """Like reflection: served only with --channelz, then for grpcurl as `client`."""
    assert AuthzPolicy.load().is_open("/grpc.channelz.v1.Channelz/GetServers")
