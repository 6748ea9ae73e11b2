"""The services that run beside Prefect in production: the event bridge and the plot server."""
