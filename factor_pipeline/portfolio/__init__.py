"""Stage `portfolio`: point-in-time risk model, weekly index-enhanced weights (optimiser, conic form)
and their backtest at next-day VWAP with costs and trading blocks."""
