"""Asset modules, one per stage group."""
