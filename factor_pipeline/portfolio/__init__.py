"""Stage `portfolio`: not built yet (see the open issues)."""
