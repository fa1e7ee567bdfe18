"""Ids of the operator realm, in the format of :mod:`callvault.store.ids`.

``opr_`` operators, ``opk_`` operator keys, ``bgr_`` break-glass grants: they
match ``ID_PATTERN`` (so the API's id checks accept them) and can never be a
tenant principal's or key's id (``prn_``, ``key_``).
"""

from __future__ import annotations

import base64
import secrets
from typing import Final

from callvault.store.ids import is_id

OPERATOR: Final = "opr"
OPERATOR_KEY: Final = "opk"
BREAK_GLASS: Final = "bgr"


def new_id(prefix: str) -> str:
    if prefix not in (OPERATOR, OPERATOR_KEY, BREAK_GLASS):
        raise ValueError("unknown id prefix")
    body = base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()
    out = f"{prefix}_{body}"
    assert is_id(out, prefix)  # noqa: S101 - the format is store.ids'; a cheap self-check
    return out
