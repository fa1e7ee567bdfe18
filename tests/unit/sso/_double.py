"""A TEST DOUBLE of the SAML and OIDC adapters, for the login core's tests only.

This is not a protocol implementation and is never used by callvault itself.
The real adapters (``callvault.sso.saml.SamlAdapter``,
``callvault.sso.oidc.OidcAdapter``) have their own suites against real
identity providers on loopback (SimpleSAMLphp, oidc-provider-mock). The core's
tests need an IdP whose answers they can shape freely (any subject, groups,
assertion id, expiry, a forged signature), which no real IdP here offers, so
this double keeps the adapter contract of ``callvault.sso._adapter``:

- ``parse_config`` validates its own fields and the derived ones the core adds
  (SAML: ``sp_entity_id`` and ``acs_url``; OIDC: ``redirect_uri``), raising
  ``SsoConfigError(field=...)``;
- ``start_login`` returns a redirect and a pending request id;
- ``finish_login`` checks an HMAC "signature" under the connection's
  ``shared_secret``, that the answer responds to the pending request id,
  that it is not expired, and asks the replay guard about its assertion id,
  raising ``SsoError(reason=...)`` like the real adapters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

from callvault.errors import SsoConfigError, SsoError
from callvault.sso import LoginStart, ReplayGuard, SsoIdentity

SECRET = "double-shared-secret-" + "x" * 16
IDP_URL = "https://idp.double.invalid/sso"


@dataclass(frozen=True)
class DoubleConfig:
    idp_url: str
    shared_secret: str
    derived: dict[str, str]


def config(**extra: object) -> dict[str, object]:
    """A valid configuration (without the derived fields, which the core adds)."""
    return {"idp_url": IDP_URL, "shared_secret": SECRET, **extra}


class DoubleAdapter:
    """Test double of one protocol's adapter (see the module docstring)."""

    def __init__(self, protocol: Literal["saml", "oidc"]) -> None:
        self.protocol = protocol
        self.derived = ("sp_entity_id", "acs_url") if protocol == "saml" else ("redirect_uri",)

    def parse_config(self, raw: Mapping[str, Any]) -> DoubleConfig:
        allowed = {"idp_url", "shared_secret", "note", *self.derived}
        for key in raw:
            if key not in allowed:
                raise SsoConfigError("unknown setting", field=key)
        for key in self.derived:
            if not str(raw.get(key, "")).startswith("https://"):
                raise SsoConfigError("derived URL missing", field=key)
        url = raw.get("idp_url")
        if not isinstance(url, str) or not url.startswith("https://"):
            raise SsoConfigError("idp_url must be https", field="idp_url")
        secret = raw.get("shared_secret")
        if not isinstance(secret, str) or len(secret) < 16:
            raise SsoConfigError("shared_secret too short", field="shared_secret")
        return DoubleConfig(url, secret, {k: str(raw[k]) for k in self.derived})

    def start_login(self, config: Any, *, tenant_id: str, connection_id: str) -> LoginStart:
        request_id = "_" + secrets.token_hex(16)
        query = urlencode({"request": request_id, "sp": connection_id, "tenant": tenant_id})
        return LoginStart(
            redirect_url=f"{config.idp_url}?{query}", pending={"request_id": request_id}
        )

    def finish_login(
        self,
        config: Any,
        *,
        tenant_id: str,
        connection_id: str,
        params: Mapping[str, str],
        pending: Mapping[str, str],
        now: datetime,
        replay: ReplayGuard,
    ) -> SsoIdentity:
        token = params.get("SAMLResponse" if self.protocol == "saml" else "code")
        if not token or "." not in token:
            raise SsoError("no answer", reason="malformed")
        body, _, mac = token.rpartition(".")
        want = hmac.new(config.shared_secret.encode(), body.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, want):
            raise SsoError("bad signature", reason="signature")
        try:
            doc = json.loads(base64.urlsafe_b64decode(body.encode()))
        except ValueError:
            raise SsoError("not json", reason="malformed") from None
        if doc["in_response_to"] != pending.get("request_id"):
            raise SsoError("answers another request", reason="in-response-to")
        not_on_or_after = datetime.fromisoformat(doc["not_on_or_after"])
        if now >= not_on_or_after:
            raise SsoError("expired", reason="expired")
        if not replay.first_use(connection_id, doc["assertion_id"], not_on_or_after):
            raise SsoError("replayed", reason="replay")
        return SsoIdentity(
            protocol=self.protocol,
            tenant_id=doc.get("tenant_id", tenant_id),
            connection_id=connection_id,
            subject=doc["subject"],
            email=doc.get("email"),
            email_verified=bool(doc.get("email_verified")),
            groups=tuple(doc.get("groups", ())),
            attributes={k: tuple(v) for k, v in doc.get("attributes", {}).items()},
        )


def answer(
    request_id: str,
    subject: str,
    *,
    groups: Sequence[str] = (),
    email: str | None = None,
    email_verified: bool = False,
    attributes: Mapping[str, Sequence[str]] | None = None,
    assertion_id: str | None = None,
    not_on_or_after: datetime | None = None,
    secret: str = SECRET,
    tenant_id: str | None = None,
) -> str:
    """What the double's "IdP" sends back for ``request_id`` (signed with ``secret``)."""
    doc: dict[str, Any] = {
        "in_response_to": request_id,
        "subject": subject,
        "groups": list(groups),
        "email": email,
        "email_verified": email_verified,
        "attributes": {k: list(v) for k, v in (attributes or {}).items()},
        "assertion_id": assertion_id or "_a" + secrets.token_hex(16),
        "not_on_or_after": (
            not_on_or_after or datetime.now(UTC) + timedelta(minutes=5)
        ).isoformat(),
    }
    if tenant_id is not None:
        doc["tenant_id"] = tenant_id
    body = base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()
    mac = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def adapters() -> dict[str, DoubleAdapter]:
    return {"saml": DoubleAdapter("saml"), "oidc": DoubleAdapter("oidc")}


def sso_asgi(rt: Any, *, clock: Any = None) -> Any:
    """The API app with the test-double adapters (and an optional clock) installed."""
    from callvault.api.app import create_fastapi  # noqa: PLC0415 - keeps the double importable alone
    from callvault.api.middleware import Guard  # noqa: PLC0415

    app = create_fastapi(rt)
    app.state.sso_adapters = adapters()
    if clock is not None:
        app.state.sso_clock = clock
    return Guard(
        app,
        max_body_bytes=rt.settings.max_body_bytes,
        hsts_max_age_seconds=rt.settings.hsts_max_age_seconds,
    )


def fill_sso_tables(rt: Any, tenant_id: str) -> None:
    """A row of ``tenant_id`` in each SSO table (connection, pending login, replay cache,
    identity link), through the core's own code, for tests of the tenant wall."""
    from callvault import sso  # noqa: PLC0415
    from callvault.sso._link import IdentityLinker  # noqa: PLC0415
    from callvault.sso._states import LoginStates  # noqa: PLC0415

    base = rt.settings.public_base_url or "https://cv.example.test"
    store = sso.ConnectionStore(rt.keys, rt.sealer, adapters(), base)
    now = datetime.now(UTC)
    with rt.db.tenant_tx(tenant_id) as s:
        conn = store.create(
            s,
            tenant_id,
            sso.ConnectionInput(
                protocol="saml",
                name="rls",
                config=config(),
                role_mappings=[{"group": "g", "role": "auditor"}],
            ),
            actor="test:rls",
        )
        LoginStates(rt.sealer, ttl=timedelta(minutes=10), max_pending=10).create(
            s, tenant_id, conn.id, {"request_id": "_rls"}, now=now
        )
        identity = SsoIdentity(
            protocol="saml",
            tenant_id=tenant_id,
            connection_id=conn.id,
            subject="rls-subject",
            groups=("g",),
        )
        IdentityLinker(rt.keys, rt.sealer).resolve(s, conn, identity, now=now)
    sso.DbReplayGuard(rt.db, tenant_id).first_use(conn.id, "_rls", now + timedelta(minutes=5))
