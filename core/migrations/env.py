"""Alembic environment: runs on the connection `core.db.upgrade` hands over."""

from alembic import context

from core.tables import SQLModel

target_metadata = SQLModel.metadata
connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only `alembic` run by hand takes this path
    from core.db import get_engine

    connection = get_engine().connect()

context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
