"""The MatchingEngine service: price-time priority order books and their event feed."""
