"""Alembic environment: runs on the connection callvault hands it."""

from __future__ import annotations

from alembic import context

from callvault.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable by calling alembic by hand
    raise RuntimeError("run migrations through `callvault migrate` or Database.migrate()")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
