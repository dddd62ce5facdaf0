"""Alembic's environment for the case store: migrations run on the connection the store
passes in ``config.attributes["connection"]`` (see :func:`fraudops.cases.store.upgrade`)."""

from alembic import context

from fraudops.cases.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
