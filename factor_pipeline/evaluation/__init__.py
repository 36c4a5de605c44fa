"""Evaluation: RankIC and (later) groups, turnover, common factors, correlations."""
