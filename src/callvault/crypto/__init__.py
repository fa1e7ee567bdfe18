"""Sealing: the one interface through which customer content reaches storage.

Prompts, knowledge-base documents, caller numbers, transcripts and anything a
caller produced are sealed with a :class:`Sealer` before they touch the
database or disk, bound to a :class:`SealContext` (tenant, deployment, owner,
object, purpose) so a sealed value moved elsewhere does not open. The
envelope recipe (per-value keys derived from a data key) is in
:mod:`callvault.crypto._envelope`; the key hierarchy behind it in
:mod:`callvault.keys`.
"""

from callvault.crypto._context import SealContext, Sealer
from callvault.crypto._envelope import open_value, seal_value

__all__ = ["SealContext", "Sealer", "open_value", "seal_value"]
