"""Sealing: the one interface through which customer content reaches storage.

Prompts, knowledge-base documents, caller numbers, transcripts and anything a
caller produced are sealed with a :class:`Sealer` before they touch the
database or disk, bound to a :class:`SealContext` (tenant, deployment, owner,
object, purpose) so a sealed value moved elsewhere does not open. The
envelope recipe (per-value keys derived from a data key) is in
:mod:`callvault.crypto._envelope`; the key hierarchy behind it in
:mod:`callvault.keys`.

The names load lazily so that :mod:`callvault.crypto.hazmat` (which the
offline audit verifier uses) does not pull in the sealing stack.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from callvault.crypto._context import SealContext, Sealer
    from callvault.crypto._envelope import open_value, seal_value, stream_key

__all__ = ["SealContext", "Sealer", "open_value", "seal_value", "stream_key"]

_LAZY = {
    "SealContext": "callvault.crypto._context",
    "Sealer": "callvault.crypto._context",
    "open_value": "callvault.crypto._envelope",
    "seal_value": "callvault.crypto._envelope",
    "stream_key": "callvault.crypto._envelope",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(name)
    return getattr(import_module(module), name)
