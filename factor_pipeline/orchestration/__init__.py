"""The Dagster shell: partitions, resources, assets and checks. The only place that imports dagster."""
