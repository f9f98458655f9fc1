"""The REST variant's server runtime: the same services over HTTP/JSON (FastAPI on
uvicorn), with the gRPC runtime's health, registration, mTLS, metrics and drain."""
