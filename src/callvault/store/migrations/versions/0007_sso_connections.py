"""SSO connections, group→role mappings, login states, SAML replay cache, SSO identities.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from __future__ import annotations

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Placeholder: the identity-core work fills this in (session 6)."""


def downgrade() -> None:
    """Placeholder."""
