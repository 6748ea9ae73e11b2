"""Prefect tasks: thin wrappers of reco/ and storage/ with their Prefect policy."""

from cygno.tasks.logs import quiet_thread_timeout_warning

quiet_thread_timeout_warning()
