"""MarketDataService: quotes and trades from the matching engine's feed, fanned
out to any number of subscribers without letting slow ones slow the rest."""
