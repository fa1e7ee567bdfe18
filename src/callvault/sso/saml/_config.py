"""A SAML connection's configuration: parsed once, never constructed invalid.

The login core stores the raw JSON object sealed and hands it to
:func:`parse_saml_config` (through ``SamlAdapter.parse_config``), which
returns a :class:`SamlConfig` or raises ``SsoConfigError`` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Literal

import xmlsec
from cryptography import x509
from cryptography.x509.oid import PublicKeyAlgorithmOID
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from callvault.errors import SsoConfigError
from callvault.sso.saml._metadata import IdpMetadata, check_url, parse_idp_metadata

Signing = Literal["assertion", "response", "either"]

DEFAULT_CLOCK_SKEW_S: Final = 60
MAX_CLOCK_SKEW_S: Final = 300
NAMEID_UNSPECIFIED: Final = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
_MAX_PEM_CHARS: Final = 64 * 1024


class _Raw(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    sp_entity_id: str = Field(min_length=1, max_length=1024)
    acs_url: str = Field(min_length=1, max_length=2048)
    idp_metadata_xml: str = Field(min_length=1)
    #: Where the metadata came from, kept for refreshes; parsing never fetches it
    #: (the core calls ``fetch_idp_metadata`` and stores the result in ``idp_metadata_xml``).
    idp_metadata_url: str | None = Field(default=None, max_length=2048)
    #: PEM certificate that MUST have signed the metadata (an enveloped signature on its
    #: root, SHA-256 or stronger), checked whenever the configuration is parsed (upload,
    #: fetch by URL, every login); unset: the metadata's own signature is not checked.
    idp_metadata_signing_certificate: str | None = Field(default=None, max_length=_MAX_PEM_CHARS)
    #: PEM; needed to decrypt encrypted assertions and NameIDs, and to sign AuthnRequests.
    sp_private_key_pem: SecretStr | None = None
    sp_certificate_pem: str | None = Field(default=None, max_length=_MAX_PEM_CHARS)
    signing: Signing = "assertion"
    clock_skew_seconds: int = Field(default=DEFAULT_CLOCK_SKEW_S, ge=0, le=MAX_CLOCK_SKEW_S)
    require_encrypted_assertion: bool = False
    #: AES-CBC content encryption in encrypted assertions and NameIDs (ADFS and
    #: SimpleSAMLphp 1.x default to it); off: only AES-GCM is accepted.
    allow_cbc_encryption: bool = False
    #: Sign AuthnRequests (HTTP-Redirect binding, RSA-SHA256) with the SP key.
    sign_authn_requests: bool = False
    #: Refuse a plain NameID: the IdP must send it encrypted (``EncryptedID``) to the SP
    #: key. An encrypted NameID is decrypted whatever this says (if there is an SP key).
    want_name_id_encrypted: bool = False
    name_id_format: str = Field(default=NAMEID_UNSPECIFIED, min_length=1, max_length=256)
    email_attribute: str | None = Field(default="email", min_length=1, max_length=256)
    display_name_attribute: str | None = Field(default="displayName", min_length=1, max_length=256)
    groups_attribute: str | None = Field(default="groups", min_length=1, max_length=256)
    #: Further attribute names whose values the identity carries (for role mapping).
    keep_attributes: tuple[str, ...] = Field(default=(), max_length=32)

    @field_validator("keep_attributes")
    @classmethod
    def _names(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if any(not name or len(name) > 256 for name in v):
            raise ValueError("attribute names must be 1-256 characters")
        return v


@dataclass(frozen=True, slots=True)
class SamlConfig:
    """One tenant connection's SAML settings, validated."""

    sp_entity_id: str
    acs_url: str
    idp: IdpMetadata
    idp_metadata_url: str | None
    #: PEM; set: the metadata was verified as signed by it (every parse).
    idp_metadata_signing_certificate: str | None
    signing: Signing
    clock_skew: timedelta
    require_encrypted_assertion: bool
    allow_cbc_encryption: bool
    sign_authn_requests: bool
    want_name_id_encrypted: bool
    name_id_format: str
    email_attribute: str | None
    display_name_attribute: str | None
    groups_attribute: str | None
    keep_attributes: tuple[str, ...]
    sp_certificate_pem: str | None
    sp_private_key_pem: SecretStr | None

    def __repr__(self) -> str:
        return (
            f"SamlConfig(sp_entity_id={self.sp_entity_id!r}, idp={self.idp.entity_id!r}, "
            f"signing={self.signing!r}, sp_key={'set' if self.sp_private_key_pem else 'unset'})"
        )


def _check_pem(pem: str, *, fmt: int, field: str) -> None:
    if len(pem) > _MAX_PEM_CHARS:
        raise SsoConfigError("PEM is too large", field=field)
    try:
        xmlsec.Key.from_memory(pem.encode(), fmt, None)
    except xmlsec.Error as exc:
        raise SsoConfigError("PEM could not be loaded", field=field) from exc


def _is_rsa_certificate(pem: str) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        return False
    return cert.public_key_algorithm_oid == PublicKeyAlgorithmOID.RSAES_PKCS1_v1_5


def parse_saml_config(raw: Mapping[str, Any]) -> SamlConfig:
    """Validate ``raw``; ``SsoConfigError(field=...)`` on the first bad field."""
    if not isinstance(raw, Mapping):
        raise SsoConfigError("SAML configuration must be an object", field="config")
    try:
        cfg = _Raw.model_validate(dict(raw))
    except ValidationError as exc:
        err = exc.errors(include_input=False, include_url=False)[0]
        field = str(err["loc"][0]) if err["loc"] else "config"
        raise SsoConfigError(f"invalid SAML setting: {err['msg']}", field=field) from exc
    acs_url = check_url(cfg.acs_url, field="acs_url")
    if cfg.idp_metadata_url is not None:
        check_url(cfg.idp_metadata_url, field="idp_metadata_url")
    signer = cfg.idp_metadata_signing_certificate
    # The certificate is checked (its own field), then the signature, before anything is read.
    idp = parse_idp_metadata(cfg.idp_metadata_xml, signing_certificate=signer)
    key = cfg.sp_private_key_pem
    cert = cfg.sp_certificate_pem
    if (key is None) != (cert is None):
        raise SsoConfigError(
            "SP private key and certificate must be given together",
            field="sp_certificate_pem" if cert is None else "sp_private_key_pem",
        )
    if key is not None and cert is not None:
        _check_pem(
            key.get_secret_value(),
            fmt=xmlsec.constants.KeyDataFormatPem,
            field="sp_private_key_pem",
        )
        _check_pem(cert, fmt=xmlsec.constants.KeyDataFormatCertPem, field="sp_certificate_pem")
    if cfg.require_encrypted_assertion and key is None:
        raise SsoConfigError(
            "encrypted assertions need an SP key and certificate",
            field="require_encrypted_assertion",
        )
    if cfg.want_name_id_encrypted and key is None:
        raise SsoConfigError(
            "encrypted NameIDs need an SP key and certificate", field="want_name_id_encrypted"
        )
    if cfg.sign_authn_requests:
        if cert is None:
            raise SsoConfigError(
                "signed AuthnRequests need an SP key and certificate",
                field="sign_authn_requests",
            )
        if not _is_rsa_certificate(cert):
            raise SsoConfigError(
                "signed AuthnRequests need an RSA SP key", field="sign_authn_requests"
            )
    if cfg.sp_entity_id == idp.entity_id:
        raise SsoConfigError("SP and IdP entity ids must differ", field="sp_entity_id")
    return SamlConfig(
        sp_entity_id=cfg.sp_entity_id,
        acs_url=acs_url,
        idp=idp,
        idp_metadata_url=cfg.idp_metadata_url,
        idp_metadata_signing_certificate=signer,
        signing=cfg.signing,
        clock_skew=timedelta(seconds=cfg.clock_skew_seconds),
        require_encrypted_assertion=cfg.require_encrypted_assertion,
        allow_cbc_encryption=cfg.allow_cbc_encryption,
        sign_authn_requests=cfg.sign_authn_requests,
        want_name_id_encrypted=cfg.want_name_id_encrypted,
        name_id_format=cfg.name_id_format,
        email_attribute=cfg.email_attribute,
        display_name_attribute=cfg.display_name_attribute,
        groups_attribute=cfg.groups_attribute,
        keep_attributes=cfg.keep_attributes,
        sp_certificate_pem=cert,
        sp_private_key_pem=key,
    )
