"""Prefect tasks: thin wrappers of reco/ and storage/ with their Prefect policy."""
