"""factor_pipeline."""
