"""``X-Twilio-Signature``: HMAC-SHA1 over the URL (and sorted POST parameters), base64.

See :mod:`callvault.calls._twilio` for the sources this follows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import urlsplit

from callvault.calls._twilio import (
    _DEFAULT_PORTS,
)


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str] | None = None) -> str:
    """Twilio's request signature: base64(HMAC-SHA1(auth_token, url + sorted name+value pairs)).

    For a WebSocket upgrade (a GET) ``params`` is empty and only the URL is
    signed, exactly as Twilio called it.
    """
    data = url
    if params:
        data += "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _url_variants(url: str) -> tuple[str, ...]:
    """``url`` without its port, and with it (the scheme's default when it has none)."""
    parts = urlsplit(url)
    port = parts.port  # ValueError for a malformed port
    head_end = url.find("//") + 2
    if head_end < 2 or url[head_end : head_end + len(parts.netloc)] != parts.netloc:
        return (url,)
    head, tail = url[:head_end], url[head_end + len(parts.netloc) :]
    userinfo, at, hostport = parts.netloc.rpartition("@")
    host = hostport[: hostport.rfind(":")] if port is not None else hostport
    without = head + userinfo + at + host + tail
    default = _DEFAULT_PORTS.get(parts.scheme)
    if port is not None:
        return (without, url)
    if default is None:
        return (without,)
    return (without, f"{head}{userinfo}{at}{host}:{default}{tail}")


def verify_signature(
    auth_token: str,
    url: str,
    signature: str,
    params: Mapping[str, str] | None = None,
) -> bool:
    """True when ``signature`` (``X-Twilio-Signature``) signs ``url`` under ``auth_token``.

    The caller MUST pass the public URL Twilio connected to (scheme, host,
    path as in the ``<Stream url>``), not the one a proxy rewrote, and MUST
    refuse the upgrade when this returns False.

    1. An empty token, or a missing or implausible signature, fails closed.
    2. Build the URL without its port and with it (the scheme's default port
       when there is none), as Twilio's own validator does.
    3. Compare each expected signature in constant time; either may match.
    """
    # (1):
    if not auth_token or not signature or len(signature) > 64 or not signature.isascii():
        return False
    try:
        # (2):
        candidates = _url_variants(url)
        expected = [twilio_signature(auth_token, c, params).encode("ascii") for c in candidates]
    except (ValueError, UnicodeEncodeError):
        return False
    # (3):
    given = signature.encode("ascii")
    matched = False
    for candidate in expected:
        matched |= hmac.compare_digest(candidate, given)
    return matched
