"""Metadata database (SQLAlchemy 2 + Alembic); sealed objects in :mod:`callvault.store.objects`
(a local directory or S3, per deployment region)."""

from callvault.store.db import Database
from callvault.store.ids import ID_PATTERN, VERSION_ID_PATTERN, is_id, new_id

__all__ = ["ID_PATTERN", "VERSION_ID_PATTERN", "Database", "is_id", "new_id"]
