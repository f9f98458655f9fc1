"""Server reflection that also resolves method symbols.

grpcio-reflection looks symbols up with DescriptorPool.FindFileContainingSymbol,
which does not find methods, so `grpcurl describe trading.v1.OrderService.PlaceOrder`
fails with "Symbol not found" and ghz's reflection mode breaks (grpc/grpc#34743,
bojand/ghz#419). We fall back to the method's service file.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pool
from grpc_reflection.v1alpha import _async as reflection_aio
from grpc_reflection.v1alpha import reflection, reflection_pb2
from grpc_reflection.v1alpha import reflection_pb2_grpc as reflection_grpc
from grpc_reflection.v1alpha._base import _file_descriptor_response

SERVICE_NAME = reflection.SERVICE_NAME


class MethodAwareReflectionServicer(reflection_aio.ReflectionServicer):
    def _file_containing_symbol(
        self, request: reflection_pb2.ServerReflectionRequest, fully_qualified_name: str
    ) -> reflection_pb2.ServerReflectionResponse:
        response = super()._file_containing_symbol(request, fully_qualified_name)
        if not response.HasField("error_response"):
            return response
        try:
            method = self._pool.FindMethodByName(fully_qualified_name)
        except KeyError:
            return response
        return _file_descriptor_response(method.containing_service.file, request)


def enable_reflection(
    service_names: Iterable[str],
    server: grpc.aio.Server,
    pool: descriptor_pool.DescriptorPool | None = None,
) -> None:
    servicer = MethodAwareReflectionServicer([*service_names, SERVICE_NAME], pool=pool)
    reflection_grpc.add_ServerReflectionServicer_to_server(servicer, server)
