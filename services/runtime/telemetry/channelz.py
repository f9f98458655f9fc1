"""grpc.channelz.v1 on a server (--channelz), for live debugging of channels,
subchannels, servers and sockets with grpcurl or grpcdebug.

It reports on the whole process, as grpc-core keeps the statistics per process;
the servicer only reads them.
"""

from __future__ import annotations

import grpc
from grpc_channelz.v1 import channelz, channelz_pb2

SERVICE_NAME: str = channelz_pb2.DESCRIPTOR.services_by_name["Channelz"].full_name


def enable_channelz(server: grpc.aio.Server) -> str:
    """Adds the channelz servicer (the grpc.aio one) and returns its service name,
    for reflection."""
    channelz.add_channelz_servicer(server)
    return SERVICE_NAME
