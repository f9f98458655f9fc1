"""The benchmark's scenarios, each measured against both transports (plan.py)."""
