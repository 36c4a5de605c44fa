"""Plain checks on stage outputs (no NaN scores, point in time, constraint audit) that the Dagster
asset checks report; each returns (passed, details) so it can be tested without Dagster."""
