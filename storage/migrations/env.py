"""Alembic environment for the catalog, run programmatically by ``Catalog.upgrade()``.

The caller hands over an open connection in ``config.attributes["connection"]`` (no
alembic.ini, no dependence on the working directory). ``alembic -x url=…`` from the
command line and offline SQL generation (``--sql``, for a DBA) work too.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from cygno.storage.catalog.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(**kwargs) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite can only ALTER by copying the table
        compare_type=True,
        **kwargs,
    )


def _url() -> str:
    return context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )


if context.is_offline_mode():
    _configure(url=_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
    else:
        engine = sa.create_engine(_url())
        with engine.connect() as connection:
            _configure(connection=connection)
            with context.begin_transaction():
                context.run_migrations()
        engine.dispose()
