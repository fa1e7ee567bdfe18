"""Operator realm (installation-level principals) and break-glass requests.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from __future__ import annotations

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Placeholder: the operator/break-glass work fills this in (session 6)."""


def downgrade() -> None:
    """Placeholder."""
