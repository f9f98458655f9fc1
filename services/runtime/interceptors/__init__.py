"""Server interceptors, one concern per module, chained by services/runtime/server.py."""
