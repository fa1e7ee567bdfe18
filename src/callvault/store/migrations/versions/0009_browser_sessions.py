"""Browser sessions and owner recovery codes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28
"""

from __future__ import annotations

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Placeholder: the sessions work fills this in (session 6)."""


def downgrade() -> None:
    """Placeholder."""
