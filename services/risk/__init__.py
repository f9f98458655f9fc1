"""RiskService: pre-trade limits and the capacity each working order holds, by account."""
