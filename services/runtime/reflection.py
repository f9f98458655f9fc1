"""Server reflection that resolves method symbols and shows the proto comments.

Two gaps of grpcio-reflection are closed here:
- It looks symbols up with DescriptorPool.FindFileContainingSymbol, which does not
  find methods, so `grpcurl describe trading.v1.OrderService.PlaceOrder` fails with
  "Symbol not found" and ghz's reflection mode breaks (grpc/grpc#34743,
  bojand/ghz#419). We fall back to the method's service file.
- Generated `_pb2` modules embed descriptors without comments, so `describe`
  shows bare fields. When a `*.binpb` descriptor set built with
  --include_source_info lies beside a service's generated module (`make protos`
  writes one), its files are served first, comments included.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor
from grpc_reflection.v1alpha import _async as reflection_aio
from grpc_reflection.v1alpha import reflection, reflection_pb2
from grpc_reflection.v1alpha import reflection_pb2_grpc as reflection_grpc
from grpc_reflection.v1alpha._base import _not_found_error

SERVICE_NAME = reflection.SERVICE_NAME

Response = reflection_pb2.ServerReflectionResponse


class MeshReflectionServicer(reflection_aio.ReflectionServicer):
    """Finds files and symbols (methods too) in the documented files first, then
    in the process's default pool, which also knows health and reflection."""

    def __init__(
        self, service_names: Iterable[str], documented: Sequence[descriptor_pb2.FileDescriptorProto]
    ) -> None:
        super().__init__(service_names)
        # Served as they are: CopyToProto() would drop the comments.
        self._documented = {file.name: file.SerializeToString() for file in documented}
        self._pools = [descriptor_pool.Default()]
        if documented:
            pool = descriptor_pool.DescriptorPool()
            for file in documented:  # dependencies first (protoc --include_imports)
                pool.Add(file)
            self._pools.insert(0, pool)

    def _respond(
        self, request: reflection_pb2.ServerReflectionRequest, file: FileDescriptor
    ) -> Response:
        files: dict[str, FileDescriptor] = {}
        pending = [file]
        while pending:
            current = pending.pop()
            if current.name not in files:
                files[current.name] = current
                pending.extend(current.dependencies)
        serialized = []
        for name, descriptor in files.items():
            raw = self._documented.get(name)
            if raw is None:
                proto = descriptor_pb2.FileDescriptorProto()
                descriptor.CopyToProto(proto)
                raw = proto.SerializeToString()
            serialized.append(raw)
        return Response(
            file_descriptor_response=reflection_pb2.FileDescriptorResponse(
                file_descriptor_proto=serialized
            ),
            original_request=request,
        )

    def _find_file(self, symbol: str) -> FileDescriptor | None:
        for pool in self._pools:
            try:
                return pool.FindFileContainingSymbol(symbol)
            except KeyError:
                pass
            try:
                return pool.FindMethodByName(symbol).containing_service.file
            except KeyError:
                pass
        return None

    def _file_by_filename(
        self, request: reflection_pb2.ServerReflectionRequest, filename: str
    ) -> Response:
        for pool in self._pools:
            try:
                return self._respond(request, pool.FindFileByName(filename))
            except KeyError:
                pass
        return _not_found_error(request)

    def _file_containing_symbol(
        self, request: reflection_pb2.ServerReflectionRequest, fully_qualified_name: str
    ) -> Response:
        file = self._find_file(fully_qualified_name)
        return _not_found_error(request) if file is None else self._respond(request, file)


def _descriptor_sets(service_names: Iterable[str]) -> list[Path]:
    """The *.binpb files beside the generated modules of these services."""
    default = descriptor_pool.Default()
    found: set[Path] = set()
    for name in service_names:
        try:
            proto_file = default.FindServiceByName(name).file.name
        except KeyError:
            continue
        module = sys.modules.get(proto_file.removesuffix(".proto").replace("/", ".") + "_pb2")
        if module is not None and module.__file__:
            found.update(Path(module.__file__).parent.glob("*.binpb"))
    return sorted(found)


def documented_files(service_names: Iterable[str]) -> list[descriptor_pb2.FileDescriptorProto]:
    """The files, with comments, of every descriptor set beside these services'
    generated code, dependencies first and each file once."""
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    for path in _descriptor_sets(service_names):
        for file in descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes()).file:
            files.setdefault(file.name, file)
    return list(files.values())


def enable_reflection(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    names = [*service_names, SERVICE_NAME]
    servicer = MeshReflectionServicer(names, documented_files(names))
    reflection_grpc.add_ServerReflectionServicer_to_server(servicer, server)
