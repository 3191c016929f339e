"""The Dagster code location for musicnft (`workspace.yaml` points at `definitions`)."""
