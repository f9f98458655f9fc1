"""Telemetry of a serving process: metrics, traces, logs and channelz."""
