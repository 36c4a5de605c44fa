"""Stage `datasets`: not built yet (see the open issues)."""
