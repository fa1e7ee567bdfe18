"""Metadata database (SQLAlchemy 2 + Alembic). The encrypted object store comes later."""

from callvault.store.db import Database
from callvault.store.ids import ID_PATTERN, VERSION_ID_PATTERN, is_id, new_id

__all__ = ["ID_PATTERN", "VERSION_ID_PATTERN", "Database", "is_id", "new_id"]
