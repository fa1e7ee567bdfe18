"""Redaction for principals whose view must not include PII.

Until the redaction-engine issue lands, :func:`mask_numbers` is the view for
redacted readers: deliberately over-broad (it masks every digit, every
number word and every e-mail-like token), so nothing numeric a caller said
can reach a QA reviewer. The engine replaces it with entity-level redaction.
"""

from callvault.redact._interim import mask_numbers

__all__ = ["mask_numbers"]
