"""Developer tooling, not services: the local stack, the demo and the UI screenshots.

Production runs the Prefect server, workers and the event bridge as managed services
(``cygno.deployments``); nothing here is imported by flows, tasks or the services.
"""
