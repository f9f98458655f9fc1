"""The shared server runtime: one grpc.aio server per process with health,
reflection, interceptors, graceful drain and multi-process serving."""
