"""trademesh services: pure domain modules with thin gRPC (and REST) adapters."""
