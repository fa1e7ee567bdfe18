"""SAML IdP metadata by URL: fetched through the egress guard, refusals as reason codes.

A tenant administrator's ``config.idp_metadata_url`` is a URL the server
fetches, so it goes through :class:`callvault.egress.EgressGuard` (never an
internal address, no redirects, bounded; docs/adr/0018-egress-guard.md) and
then ``fetch_idp_metadata`` of the SAML adapter (size limit, parses as IdP
metadata). Every failure is ``SsoConfigError(field="config.idp_metadata_url")``
whose message ends ``(reason: <code>)``: the guard's reason (``loopback``,
``private``, ``redirect``, ``too-large`` ...) or ``http-status``,
``timeout``, ``tls``, ``connect``, ``network``, ``not-metadata``. Neither the
URL nor an address is ever in the message.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from importlib import import_module
from typing import Final

import httpx

from callvault.egress import EgressGuard, EgressRefusedError
from callvault.errors import SsoConfigError

#: Fetches IdP metadata from a URL an administrator gave: the document's bytes, or
#: ``SsoConfigError(field="config.idp_metadata_url")`` whose message ends ``(reason: <code>)``.
MetadataFetcher = Callable[[str], bytes]
FIELD: Final = "config.idp_metadata_url"
#: The SAML adapter's own metadata limit (``callvault.sso.saml._metadata.MAX_METADATA_BYTES``).
MAX_METADATA_BYTES: Final = 512 * 1024


def fetch_failed(reason: str) -> SsoConfigError:
    return SsoConfigError(f"{FIELD} could not be used (reason: {reason})", field=FIELD)


def _fetch_reason(exc: SsoConfigError) -> str:
    """A reason code for what ``fetch_idp_metadata`` refused (it raises one error type)."""
    cause = exc.__cause__
    if isinstance(cause, SsoConfigError):
        return "not-metadata"  # fetched, but it did not parse as IdP metadata
    if isinstance(cause, httpx.TimeoutException):
        return "timeout"
    if isinstance(cause, httpx.ConnectError):
        context: BaseException | None = cause
        while context is not None:
            if isinstance(context, ssl.SSLError):
                return "tls"
            context = context.__cause__ or context.__context__
        return "connect"
    if isinstance(cause, httpx.HTTPError):
        return "network"
    return "http-status"  # the URL passed the guard's own check first; non-200 is what is left


def fetch_metadata_guarded(guard: EgressGuard) -> MetadataFetcher:
    """A :data:`MetadataFetcher` through ``guard`` (``fetch_idp_metadata`` of the SAML adapter).

    1. The URL MUST pass the guard's URL check (https, no credentials, an allowed port).
    2. One GET through ``guard.client()``: resolved once, every address globally
       routable (or in the installation's allow-list), connected to the vetted
       address, no redirects, within the guard's timeout.
    3. ``fetch_idp_metadata`` reads at most its size limit and checks the body parses.
    """

    def fetch(url: str) -> bytes:
        saml = import_module("callvault.sso.saml")  # the SAML adapter's extra, loaded at use
        try:
            # (1):
            guard.check_url(url)
            # (2), (3):
            # The guard's limits are the tighter ones, so a refusal names its reason:
            # fetch_idp_metadata's own deadline (a second later) and size cap never fire first.
            with guard.client(max_response_bytes=MAX_METADATA_BYTES) as http:
                body: bytes = saml.fetch_idp_metadata(
                    url, http=http, max_bytes=MAX_METADATA_BYTES, timeout_s=guard.timeout_s + 1
                )
        except EgressRefusedError as exc:
            raise fetch_failed(exc.reason) from None
        except SsoConfigError as exc:
            raise fetch_failed(_fetch_reason(exc)) from None
        return body

    return fetch
