"""trademesh benchmarks: gRPC and REST side by side, in one run (`make bench`)."""
