"""A real OpenID provider on loopback: ``oidc-provider-mock`` (authlib's server) in a thread.

:func:`running_provider` starts one provider (a Flask app served by
werkzeug on ``127.0.0.1`` and a free port; its issuer is
``http://127.0.0.1:<port>``) and stops it at the end of the block. The
provider signs ID tokens with its own RSA key (each instance its own), makes
authorization codes single use, checks the redirect URI of registered
clients, and, with ``require_nonce``, refuses authorization requests without
a nonce. Version 0.3.4 does not enforce PKCE (its authorization code grant
has no code-challenge extension); the tests observe our side of PKCE on the
wire instead.

:meth:`OidcProvider.login` drives the provider's authorization form with
httpx the way a browser would: GET our authorization URL, POST the subject
to the form, and return the query of the redirect back to our callback
(``code`` and ``state``, or ``error``). :class:`TamperingTransport` sits
between our adapter and the provider when a test plays a network attacker
(rewrite the discovery document or the token response in flight).
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import oidc_provider_mock
import werkzeug.serving

#: A JSON-object rewrite applied to one provider answer in flight.
Rewrite = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class OidcProvider:
    """One running provider; ``issuer`` is its base URL."""

    issuer: str
    server: werkzeug.serving.BaseWSGIServer
    #: How the test's own requests trust the provider (its certificate when served over TLS).
    verify: ssl.SSLContext | bool = True

    def register_client(self, redirect_uris: list[str]) -> tuple[str, str]:
        """Dynamic client registration (RFC 7591); returns (client_id, client_secret)."""
        resp = httpx.post(
            f"{self.issuer}/oauth2/clients",
            json={"redirect_uris": redirect_uris},
            timeout=10,
            verify=self.verify,
        )
        resp.raise_for_status()
        doc = resp.json()
        return str(doc["client_id"]), str(doc["client_secret"])

    def set_user(self, sub: str, claims: Mapping[str, object]) -> None:
        """Define the claims the provider puts in ``sub``'s tokens."""
        resp = httpx.put(
            f"{self.issuer}/users/{sub}", json=dict(claims), timeout=10, verify=self.verify
        )
        resp.raise_for_status()

    def authorize(self, url: str, sub: str) -> httpx.Response:
        """GET the authorization URL (the provider's form), then POST the subject."""
        with httpx.Client(timeout=10, follow_redirects=False, verify=self.verify) as browser:
            form = browser.get(url)
            if form.status_code != 200:
                return form
            return browser.post(url, data={"sub": sub})

    def login(self, url: str, sub: str) -> dict[str, str]:
        """The callback query the provider redirects the browser to (``code``/``state``)."""
        answer = self.authorize(url, sub)
        if answer.status_code not in {302, 303}:
            msg = f"the provider did not redirect back (HTTP {answer.status_code})"
            raise AssertionError(msg)
        return dict(parse_qsl(urlsplit(answer.headers["location"]).query))


@contextmanager
def running_provider(
    *,
    require_client_registration: bool = False,
    require_nonce: bool = False,
    tls: tuple[Path, Path] | None = None,
    wsgi: Callable[[Any], Any] | None = None,
) -> Iterator[OidcProvider]:
    """Serve a fresh provider on ``127.0.0.1`` until the block ends.

    ``tls`` (certificate and key files, the certificate naming 127.0.0.1) serves it over
    https, trusted by the returned provider's ``verify`` only. ``wsgi`` wraps the app
    (a test counting the requests that reach the provider).
    """
    app = oidc_provider_mock.app(
        require_client_registration=require_client_registration,
        require_nonce=require_nonce,
    )
    served = app if wsgi is None else wsgi(app)
    context: ssl.SSLContext | None = None
    verify: ssl.SSLContext | bool = True
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        verify = ssl.create_default_context(cafile=str(tls[0]))
    server = werkzeug.serving.make_server(
        "127.0.0.1", 0, served, threaded=True, ssl_context=context
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    scheme = "http" if tls is None else "https"
    try:
        yield OidcProvider(
            issuer=f"{scheme}://127.0.0.1:{server.server_port}", server=server, verify=verify
        )
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


class TamperingTransport(httpx.BaseTransport):
    """Forwards to the real provider; rewrites JSON answers whose path a test names.

    ``rewrites`` maps a URL path (``/.well-known/openid-configuration``,
    ``/oauth2/token``, ``/jwks``) to a function of the decoded JSON object.
    ``seen`` records every request (method, URL, form body) for assertions.
    """

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.rewrites: dict[str, Rewrite] = {}
        self.seen: list[tuple[str, str, dict[str, str]]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        form = dict(parse_qsl(body.decode())) if body else {}
        self.seen.append((request.method, str(request.url), form))
        response = self._inner.handle_request(request)
        rewrite = self.rewrites.get(request.url.path)
        if rewrite is None or response.status_code != 200:
            return response
        response.read()
        doc = rewrite(response.json())
        return httpx.Response(200, json=doc)

    def close(self) -> None:
        self._inner.close()
