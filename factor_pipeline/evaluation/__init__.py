"""Stage `evaluation`: not built yet (see the open issues)."""
