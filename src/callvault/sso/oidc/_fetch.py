"""Bounded HTTP exchanges with the provider: one request, no redirects, a deadline, a size cap.

Everything the adapter fetches (discovery, JWKS, the token endpoint's
answer) goes through :func:`exchange_json`:

1. One request on the caller's ``httpx.Client`` (it owns proxies and the TLS
   trust store), redirects not followed (a redirect could leave https or the
   provider), ``timeout_s`` per network operation and as the total deadline.
2. The body is read in chunks and abandoned beyond ``max_bytes``.
3. The body MUST be a JSON object (UTF-8).

Failures raise :class:`FetchError` with a short cause (``http-<status>``,
``too-large``, ``timeout``, ``network``, ``not-json``, ``egress-<reason>`` when
the client's egress guard refused the URL or its addresses); the body is never
quoted (a token endpoint's error text may echo the code or the client id).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, Final

import httpx

from callvault.egress import EgressRefusedError

FETCH_TIMEOUT_S: Final = 10.0


class FetchError(Exception):
    """A provider request failed; ``cause`` is a short code, never provider text."""

    def __init__(self, cause: str, *, status: int | None = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.status = status


def exchange_json(
    http: httpx.Client,
    method: str,
    url: str,
    *,
    max_bytes: int,
    timeout_s: float = FETCH_TIMEOUT_S,
    headers: Mapping[str, str] | None = None,
    content: str | None = None,
) -> dict[str, Any]:
    """Steps (1)-(3) of the module docstring; the JSON object or :class:`FetchError`."""
    deadline = time.monotonic() + timeout_s
    chunks: list[bytes] = []
    size = 0
    send_headers = {"Accept": "application/json", **(headers or {})}
    # (1)
    try:
        with http.stream(
            method,
            url,
            headers=send_headers,
            content=content,
            timeout=timeout_s,
            follow_redirects=False,
        ) as resp:
            if resp.status_code != 200:
                raise FetchError(f"http-{resp.status_code}", status=resp.status_code)
            # (2)
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError("too-large")
                if time.monotonic() > deadline:
                    raise FetchError("timeout")
                chunks.append(chunk)
    except EgressRefusedError as exc:  # a URL or address the installation does not reach
        raise FetchError(f"egress-{exc.reason}") from None
    except httpx.TimeoutException:
        raise FetchError("timeout") from None
    except httpx.HTTPError:
        raise FetchError("network") from None
    # (3)
    try:
        doc = json.loads(b"".join(chunks).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise FetchError("not-json") from None
    if not isinstance(doc, dict):
        raise FetchError("not-json")
    return doc
