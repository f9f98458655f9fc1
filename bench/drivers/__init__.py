"""Load generators. Each returns a raw figure: a dict with requests, errors,
duration_s, latency_ms, latency_curve, generator_cpu_s and first_error, which
bench/runner.py turns into a Measurement with the servers' side of the story."""
