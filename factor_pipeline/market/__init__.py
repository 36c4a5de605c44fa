"""Sources of raw market data: the synthetic A-share market, file import, the table contract."""
