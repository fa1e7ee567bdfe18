"""The python3-saml (OneLogin toolkit) backend.

:meth:`OneLoginBackend.verify` runs python3-saml in strict mode with:

1. the IdP's metadata signing certificates as its only trust
   (``x509certMulti``, no fingerprint: a certificate carried in the response
   is never used), ``rejectDeprecatedAlgorithm`` on, ``wantAssertionsSigned``
   / ``wantMessagesSigned`` from the connection's ``signing`` policy,
   ``wantAssertionsEncrypted`` / ``wantNameIdEncrypted`` when the connection
   requires them;
2. the SP's key for decrypting an encrypted assertion;
3. the request id for its ``InResponseTo`` check and the ACS URL as the
   "current URL" for its Destination/Recipient checks.

The library's checks are kept as a second wall but are not relied on: it
lets a response without ``InResponseTo`` through, checks Destination and
Audience only when present, matches Recipient by substring, uses the wall
clock with a fixed 300 s drift instead of the connection's skew, and keeps
no replay cache. Our own checks (``_checks``) cover all of that on the
document returned here, and decrypt an ``EncryptedID`` themselves
(``_encrypted_id``). Every library failure becomes ``SsoError`` with a
reason code; the library's message (which quotes response values) is dropped.

AuthnRequests are built without ``wantNameIdEncrypted``: with it, python3-saml
replaces the ``NameIDPolicy`` format the connection asks for with
``…:nameid-format:encrypted``, which drops that format (the IdP then picks
one, possibly transient) and which several IdPs refuse outright. An IdP is
told to encrypt the NameID in its own per-SP settings (SimpleSAMLphp
``nameid.encryption``, Shibboleth ``encryptNameIDs``); our SP metadata
publishes the encryption certificate, which is all SAML metadata can say.
"""

from __future__ import annotations

import base64
import urllib.parse
from typing import Any, Final

import xmlsec
from onelogin.saml2.authn_request import (  # type: ignore[import-untyped]  # python3-saml ships no type information
    OneLogin_Saml2_Authn_Request,
)
from onelogin.saml2.constants import (  # type: ignore[import-untyped]  # same
    OneLogin_Saml2_Constants as C,
)
from onelogin.saml2.errors import (  # type: ignore[import-untyped]  # same
    OneLogin_Saml2_ValidationError as VE,
)
from onelogin.saml2.response import (  # type: ignore[import-untyped]  # same
    OneLogin_Saml2_Response,
)
from onelogin.saml2.settings import (  # type: ignore[import-untyped]  # same
    OneLogin_Saml2_Settings,
)

from callvault.errors import SsoError
from callvault.sso.saml._backend import AuthnRequest, VerifiedDocument
from callvault.sso.saml._config import SamlConfig
from callvault.sso.saml._xml import qname

#: python3-saml validation codes → our reason codes (anything else: "invalid").
_REASONS: Final[dict[int, str]] = {
    VE.UNSUPPORTED_SAML_VERSION: "malformed",
    VE.MISSING_ID: "malformed",
    VE.INVALID_XML_FORMAT: "malformed",
    VE.WRONG_NUMBER_OF_ASSERTIONS: "assertion-count",
    VE.MISSING_STATUS: "status",
    VE.MISSING_STATUS_CODE: "status",
    VE.STATUS_CODE_IS_NOT_SUCCESS: "status",
    VE.WRONG_SIGNED_ELEMENT: "signature",
    VE.ID_NOT_FOUND_IN_SIGNED_ELEMENT: "signature",
    VE.DUPLICATED_ID_IN_SIGNED_ELEMENTS: "signature",
    VE.INVALID_SIGNED_ELEMENT: "signature",
    VE.DUPLICATED_REFERENCE_IN_SIGNED_ELEMENTS: "signature",
    VE.UNEXPECTED_SIGNED_ELEMENTS: "signature",
    VE.WRONG_NUMBER_OF_SIGNATURES_IN_RESPONSE: "signature",
    VE.WRONG_NUMBER_OF_SIGNATURES_IN_ASSERTION: "signature",
    VE.WRONG_NUMBER_OF_SIGNATURES: "signature",
    VE.INVALID_SIGNATURE: "signature",
    VE.NO_SIGNED_MESSAGE: "signature",
    VE.NO_SIGNED_ASSERTION: "signature",
    VE.NO_SIGNATURE_FOUND: "signature",
    VE.DEPRECATED_SIGNATURE_METHOD: "weak-algorithm",
    VE.DEPRECATED_DIGEST_METHOD: "weak-algorithm",
    VE.WRONG_INRESPONSETO: "in-response-to",
    VE.NO_ENCRYPTED_ASSERTION: "encryption",
    VE.NO_ENCRYPTED_NAMEID: "encryption",
    VE.KEYINFO_NOT_FOUND_IN_ENCRYPTED_DATA: "decryption",
    VE.CHILDREN_NODE_NOT_FOUND_IN_KEYINFO: "decryption",
    VE.UNSUPPORTED_RETRIEVAL_METHOD: "decryption",
    VE.ASSERTION_TOO_EARLY: "not-yet-valid",
    VE.ASSERTION_EXPIRED: "expired",
    VE.SESSION_EXPIRED: "expired",
    VE.RESPONSE_EXPIRED: "expired",
    VE.WRONG_DESTINATION: "destination",
    VE.EMPTY_DESTINATION: "destination",
    VE.WRONG_AUDIENCE: "audience",
    VE.ISSUER_MULTIPLE_IN_RESPONSE: "issuer",
    VE.ISSUER_NOT_FOUND_IN_ASSERTION: "issuer",
    VE.WRONG_ISSUER: "issuer",
    VE.WRONG_SUBJECTCONFIRMATION: "subject-confirmation",
    VE.NO_NAMEID: "subject",
    VE.EMPTY_NAMEID: "subject",
    VE.SP_NAME_QUALIFIER_NAME_MISMATCH: "subject",
}


def _settings(config: SamlConfig, *, verifying: bool) -> Any:
    sp: dict[str, Any] = {
        "entityId": config.sp_entity_id,
        "assertionConsumerService": {"url": config.acs_url, "binding": C.BINDING_HTTP_POST},
        "NameIDFormat": config.name_id_format,
    }
    if config.sp_private_key_pem is not None and config.sp_certificate_pem is not None:
        sp["x509cert"] = config.sp_certificate_pem
        sp["privateKey"] = config.sp_private_key_pem.get_secret_value()
    settings = {
        "strict": True,
        "debug": False,
        "sp": sp,
        "idp": {
            "entityId": config.idp.entity_id,
            "singleSignOnService": {"url": config.idp.sso_url, "binding": C.BINDING_HTTP_REDIRECT},
            # (1): the metadata's certificates are the only trust; no fingerprint, no x509cert
            "x509certMulti": {"signing": list(config.idp.signing_certs)},
        },
        "security": {
            "wantAssertionsSigned": config.signing == "assertion",
            "wantMessagesSigned": config.signing == "response",
            "wantAssertionsEncrypted": config.require_encrypted_assertion,
            # Only when verifying: see the module docstring (NameIDPolicy).
            "wantNameIdEncrypted": verifying and config.want_name_id_encrypted,
            "rejectDeprecatedAlgorithm": True,
            "signatureAlgorithm": C.RSA_SHA256,
            "digestAlgorithm": C.SHA256,
            "wantNameId": True,
            # Our own checks read attributes; an IdP may legitimately send none.
            "wantAttributeStatement": False,
            # Not sending RequestedAuthnContext: an exact PasswordProtectedTransport
            # request makes IdPs with MFA or passwordless sign-in refuse the login.
            "requestedAuthnContext": False,
            "allowRepeatAttributeName": False,
        },
    }
    return OneLogin_Saml2_Settings(settings, sp_validation_only=False)


def _signed_query(config: SamlConfig, query: str) -> str:
    """SAML Bindings §3.4.4.1: RSA-SHA256 over ``SAMLRequest=…&SigAlg=…`` exactly as sent."""
    key = config.sp_private_key_pem
    if key is None:
        raise SsoError("signed AuthnRequests need an SP key", reason="config")
    signed = f"{query}&{urllib.parse.urlencode({'SigAlg': C.RSA_SHA256})}"
    try:
        ctx = xmlsec.SignatureContext()
        ctx.key = xmlsec.Key.from_memory(
            key.get_secret_value().encode(), xmlsec.constants.KeyDataFormatPem, None
        )
        signature = ctx.sign_binary(signed.encode("ascii"), xmlsec.constants.TransformRsaSha256)
    except xmlsec.Error as exc:
        raise SsoError(
            f"AuthnRequest could not be signed ({type(exc).__name__})", reason="config"
        ) from None
    return f"{signed}&{urllib.parse.urlencode({'Signature': base64.b64encode(signature)})}"


def _request_data(acs_url: str, encoded: str) -> dict[str, Any]:
    parts = urllib.parse.urlsplit(acs_url)
    return {
        "https": "on" if parts.scheme == "https" else "off",
        "http_host": parts.netloc,
        "script_name": parts.path,
        "get_data": {},
        "post_data": {"SAMLResponse": encoded},
    }


class OneLoginBackend:
    """python3-saml 1.16 behind :class:`~callvault.sso.saml._backend.SamlBackend`."""

    def authn_request(self, config: SamlConfig) -> AuthnRequest:
        """An AuthnRequest, deflated and base64-encoded into the IdP's SSO URL; signed
        (redirect binding) when the connection says so."""
        try:
            request = OneLogin_Saml2_Authn_Request(
                _settings(config, verifying=False), set_nameid_policy=True
            )
            encoded = request.get_request()
            request_id = str(request.get_id())
        except Exception as exc:  # noqa: BLE001 - any library failure here is a configuration problem, reported by type only
            raise SsoError(
                f"AuthnRequest could not be built ({type(exc).__name__})", reason="config"
            ) from None
        sep = "&" if urllib.parse.urlsplit(config.idp.sso_url).query else "?"
        query = urllib.parse.urlencode({"SAMLRequest": encoded})
        if config.sign_authn_requests:
            query = _signed_query(config, query)
        return AuthnRequest(request_id=request_id, redirect_url=f"{config.idp.sso_url}{sep}{query}")

    def verify(self, config: SamlConfig, *, encoded: str, request_id: str) -> VerifiedDocument:
        """Steps (1)-(3) of the module docstring."""
        try:
            settings = _settings(config, verifying=True)
            # (2): decryption happens in the constructor
            response = OneLogin_Saml2_Response(settings, encoded)
        except VE as exc:
            raise SsoError(
                "SAML response refused", reason=_REASONS.get(exc.code, "invalid")
            ) from None
        except Exception as exc:  # noqa: BLE001 - the caller parsed the XML already: what fails here is decryption
            raise SsoError(
                f"SAML response refused ({type(exc).__name__})", reason="decryption"
            ) from None
        try:
            # (3):
            response.is_valid(
                _request_data(config.acs_url, encoded), request_id, raise_exceptions=True
            )
            signed = response.process_signed_elements()
        except VE as exc:
            raise SsoError(
                "SAML response refused", reason=_REASONS.get(exc.code, "invalid")
            ) from None
        except Exception as exc:  # noqa: BLE001 - same: any library failure is a refused response
            raise SsoError(
                f"SAML response refused ({type(exc).__name__})", reason="invalid"
            ) from None
        return VerifiedDocument(
            document=response.get_xml_document(),
            signed_response=qname("samlp", "Response") in signed,
            signed_assertion=qname("saml", "Assertion") in signed,
            encrypted=bool(response.encrypted),
        )
