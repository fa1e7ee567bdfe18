"""Audit trail: every denial, content read, change and key operation, by id only.

This first implementation appends RFC 8785 canonical JSON entries with
contiguous per-tenant indices to an insert-only table. The audit-log issue
turns it into a per-tenant RFC 9162 Merkle log with signed checkpoints behind
the same interface.
"""

from callvault.audit._entry import AuditEvent, Outcome, entry_bytes
from callvault.audit._log import AuditLog

__all__ = ["AuditEvent", "AuditLog", "Outcome", "entry_bytes"]
