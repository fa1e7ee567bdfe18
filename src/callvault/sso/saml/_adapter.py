"""The SAML 2.0 service provider behind :class:`~callvault.sso._adapter.SsoAdapter`."""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from callvault.errors import SsoError
from callvault.sso._adapter import LoginStart, ReplayGuard
from callvault.sso._identity import SsoIdentity
from callvault.sso.saml._backend import SamlBackend
from callvault.sso.saml._checks import CheckedAssertion, Expected, NameIdDecrypter, check_response
from callvault.sso.saml._config import SamlConfig, parse_saml_config
from callvault.sso.saml._encrypted_id import decrypt_name_id
from callvault.sso.saml._onelogin import OneLoginBackend
from callvault.sso.saml._signatures import check_algorithms
from callvault.sso.saml._xml import XmlRejectedError, parse_untrusted, qname

#: Largest ``SAMLResponse`` form value accepted, checked before decoding.
DEFAULT_MAX_RESPONSE_BYTES: Final = 256 * 1024
_PENDING_REQUEST: Final = "saml_request_id"
_WHITESPACE: Final = str.maketrans("", "", " \t\r\n")


class SamlAdapter:
    """SP-initiated SAML 2.0 Web SSO (AuthnRequest by HTTP-Redirect, Response by HTTP-POST).

    Stateless: the pending request id travels in ``LoginStart.pending``
    (the core binds it to the browser), assertion ids in the caller's
    :class:`ReplayGuard`.
    """

    protocol: Final = "saml"

    def __init__(
        self,
        *,
        backend: SamlBackend | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self._backend: SamlBackend = backend if backend is not None else OneLoginBackend()
        self._max_response_bytes = max_response_bytes

    def parse_config(self, raw: Mapping[str, Any]) -> SamlConfig:
        """Validate a connection's stored configuration (``SsoConfigError`` naming the field)."""
        return parse_saml_config(raw)

    def start_login(self, config: Any, *, tenant_id: str, connection_id: str) -> LoginStart:
        """An AuthnRequest to the IdP; ``pending`` holds its id for :meth:`finish_login`."""
        cfg = _config(config)
        request = self._backend.authn_request(cfg)
        return LoginStart(
            redirect_url=request.redirect_url,
            pending={
                _PENDING_REQUEST: request.request_id,
                "tenant_id": tenant_id,
                "connection_id": connection_id,
            },
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
        """Verify the POSTed ``SAMLResponse`` and return the identity it asserts.

        1. ``pending`` MUST come from this connection's :meth:`start_login`
           (the core guarantees it is this browser's, unexpired and unused).
        2. The encoded response is at most ``max_response_bytes`` (checked
           before decoding), strict base64, and parses as XML without DTD or
           entities (``_xml.parse_untrusted``) into a ``samlp:Response``.
        3. Every signature, digest, transform and encryption algorithm in it
           is on our allow-list (SHA-1 and RSA PKCS#1 v1.5 refused; AES-CBC
           content encryption only where the connection allows it).
        4. The backend verifies the signatures against the IdP metadata's
           certificates only and decrypts an encrypted assertion with the SP key.
        5. Algorithms are checked again on the decrypted document.
        6. Our own checks (``_checks.check_response``): destination, request
           id, issuer, one assertion, the signing policy, audience, times
           with the connection's bounded skew at ``now``, the subject (an
           ``EncryptedID`` in the covered assertion is decrypted with the SP
           key under the same algorithm policy, ``_encrypted_id``, then checked
           as a plain NameID; a plain one is refused if the connection wants
           it encrypted), bearer subject confirmation, authentication statement.
        7. The assertion id MUST be new to ``replay`` for this connection
           (kept until its ``NotOnOrAfter`` plus skew), else ``replay``.
        8. The identity: NameID as subject, the configured attributes.
        """
        cfg = _config(config)
        if now.tzinfo is None:
            raise SsoError("verification time must be timezone-aware", reason="config")
        # (1):
        request_id = pending.get(_PENDING_REQUEST)
        if (
            not request_id
            or pending.get("connection_id") != connection_id
            or pending.get("tenant_id") != tenant_id
        ):
            raise SsoError("no pending SAML request for this connection", reason="state")
        # (2):
        encoded = params.get("SAMLResponse")
        if not isinstance(encoded, str) or not encoded:
            raise SsoError("SAMLResponse is missing", reason="malformed")
        if len(encoded) > self._max_response_bytes:
            raise SsoError("SAMLResponse exceeds the size limit", reason="too-large")
        compact = encoded.translate(_WHITESPACE)
        try:
            raw = base64.b64decode(compact, validate=True)
        except (binascii.Error, ValueError):
            raise SsoError("SAMLResponse is not base64", reason="malformed") from None
        try:
            root = parse_untrusted(raw, max_bytes=self._max_response_bytes)
        except XmlRejectedError as exc:
            raise SsoError("SAMLResponse is not acceptable XML", reason=exc.reason) from None
        if root.tag != qname("samlp", "Response"):
            raise SsoError("SAMLResponse is not a SAML Response", reason="malformed")
        # (3):
        check_algorithms(root, allow_cbc=cfg.allow_cbc_encryption)
        # (4):
        verified = self._backend.verify(cfg, encoded=compact, request_id=request_id)
        # (5):
        check_algorithms(verified.document, allow_cbc=cfg.allow_cbc_encryption)
        if cfg.require_encrypted_assertion and not verified.encrypted:
            raise SsoError("the connection requires an encrypted assertion", reason="encryption")
        # (6):
        checked = check_response(
            verified,
            Expected(
                idp_entity_id=cfg.idp.entity_id,
                sp_entity_id=cfg.sp_entity_id,
                acs_url=cfg.acs_url,
                request_id=request_id,
                signing=cfg.signing,
                skew=cfg.clock_skew,
                now=now,
                require_encrypted_name_id=cfg.want_name_id_encrypted,
            ),
            decrypt_name_id=_name_id_decrypter(cfg),
        )
        # (7):
        if not replay.first_use(connection_id, checked.assertion_id, checked.replay_until):
            raise SsoError("assertion was already used", reason="replay")
        # (8):
        return _identity(cfg, checked, tenant_id=tenant_id, connection_id=connection_id)


def _config(config: Any) -> SamlConfig:
    if not isinstance(config, SamlConfig):
        raise SsoError("connection configuration was not parsed by this adapter", reason="config")
    return config


def _name_id_decrypter(cfg: SamlConfig) -> NameIdDecrypter | None:
    """Decrypts an ``EncryptedID`` with the connection's SP key; None without one."""
    key = cfg.sp_private_key_pem
    if key is None:
        return None
    return functools.partial(
        decrypt_name_id,
        sp_private_key_pem=key.get_secret_value(),
        allow_cbc=cfg.allow_cbc_encryption,
    )


def _identity(
    cfg: SamlConfig, checked: CheckedAssertion, *, tenant_id: str, connection_id: str
) -> SsoIdentity:
    attrs = checked.attributes

    def first(name: str | None) -> str | None:
        values = attrs.get(name, ()) if name else ()
        return values[0] if values else None

    groups = attrs.get(cfg.groups_attribute, ()) if cfg.groups_attribute else ()
    return SsoIdentity(
        protocol="saml",
        tenant_id=tenant_id,
        connection_id=connection_id,
        subject=checked.name_id,
        email=first(cfg.email_attribute),
        email_verified=False,
        display_name=first(cfg.display_name_attribute),
        groups=tuple(dict.fromkeys(groups)),
        authenticated_at=checked.authn_instant,
        idp_session=checked.session_index,
        attributes={name: attrs[name] for name in cfg.keep_attributes if name in attrs},
    )
