"""`cygno bridge`: the event bridge and plot server (S3 notifications → Prefect events)."""

from __future__ import annotations

import logging

import typer

from cygno.cli import app


@app.command()
def bridge(
    host: str = typer.Option(None, help="Listen address [default: CYGNO_BRIDGE_HOST]"),
    port: int = typer.Option(None, help="Listen port [default: CYGNO_BRIDGE_PORT]"),
    dedup_seconds: float = typer.Option(
        600.0,
        envvar="CYGNO_BRIDGE_DEDUP_SECONDS",
        help="Drop repeated notifications of one object version within this window",
    ),
) -> None:
    """Serve POST /s3-events, GET /files/quality/…, GET /trends and GET /healthz.

    Needs PREFECT_API_URL (where events go) and CYGNO_BRIDGE_TOKEN (the bearer token
    the bucket's webhook target sends).
    """
    from cygno.deployments.webapp import serve
    from cygno.settings import get_settings

    settings = get_settings()
    if host is not None or port is not None:
        settings = settings.model_copy(
            update={
                "bridge_host": host or settings.bridge_host,
                "bridge_port": port or settings.bridge_port,
            }
        )
    if settings.bridge_token is None:
        typer.echo("warning: CYGNO_BRIDGE_TOKEN is not set; notifications will get 401", err=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        serve(settings, dedup_seconds=dedup_seconds)
    except RuntimeError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
