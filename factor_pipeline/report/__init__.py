"""Stage `report`: not built yet (see the open issues)."""
