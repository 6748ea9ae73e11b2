"""Run-level Prefect flows: composition of tasks only."""
