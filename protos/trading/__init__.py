"""Generated protobuf and gRPC code for the trademesh contract (see protos/)."""
