"""Stage `report`: the evaluation figures (metrics.json, validated against its schema), the scores
behind them and report.html, built from the run's folder alone."""
