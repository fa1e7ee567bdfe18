"""Opaque resource ids: a short kind prefix and 128 random bits in lowercase base32.

Ids are metadata, never derived from content. ``ID_PATTERN`` is what the API
accepts in paths and bodies; anything else is rejected before a query runs.
"""

from __future__ import annotations

import base64
import re
import secrets
from typing import Final

PREFIXES: Final = frozenset(
    {
        "ten",
        "dep",
        "agt",
        "call",
        "prn",
        "key",
        "rb",
        "rec",
        "kek",
        "dk",
        "snk",
        "sct",
        "grp",
        "sso",
        "sls",
    }
)
ID_PATTERN: Final = r"^[a-z]{2,4}_[a-z2-7]{26}$"
#: The reserved tenant row that holds the installation's own audit log (docs/adr/0017).
#: Deliberately *not* an id: it fails ``ID_PATTERN``, so no API key, session cookie,
#: SCIM token, SSO path or operator route can ever name it.
INSTALLATION_LOG: Final = "installation"
VERSION_ID_PATTERN: Final = r"^[0-9a-f]{64}$"
_ID_RE: Final = re.compile(ID_PATTERN)


def new_id(prefix: str) -> str:
    """A new random id such as ``dep_3kq…``."""
    if prefix not in PREFIXES:
        raise ValueError("unknown id prefix")
    body = base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()
    return f"{prefix}_{body}"


def is_id(value: str, prefix: str | None = None) -> bool:
    """True if ``value`` is a well-formed id (of ``prefix``, when given)."""
    if not _ID_RE.match(value):
        return False
    return prefix is None or value.startswith(prefix + "_")
