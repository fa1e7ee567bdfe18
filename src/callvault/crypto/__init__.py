"""Sealing: the one interface through which customer content reaches storage.

Prompts, knowledge-base documents, caller numbers, transcripts and anything a
caller produced are sealed with :class:`Sealer` before they touch the database
or disk, bound to a :class:`SealContext` (tenant, deployment, object, purpose)
so a sealed value moved to another row, tenant or purpose does not open.

The first implementation, :class:`LocalSealer`, derives one AES-256-GCM key per
(tenant, deployment) from the local root key. The encryption-at-rest issue
replaces it with the per-deployment KEK hierarchy behind the same interface.
"""

from callvault.crypto._context import SealContext, Sealer
from callvault.crypto._local_seal import LocalSealer

__all__ = ["LocalSealer", "SealContext", "Sealer"]
