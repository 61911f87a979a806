"""Alembic environment: runs against the engine `audit.db.upgrade` passes in."""

from __future__ import annotations

from alembic import context

from audit.db import make_engine

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # the alembic CLI with -x url=... (not the usual path)
    engine = make_engine(context.get_x_argument(as_dictionary=True)["url"])

with engine.connect() as connection:
    context.configure(connection=connection, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()
