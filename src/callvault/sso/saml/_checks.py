"""Our own checks of a verified SAML response (pure: values in, values out).

:func:`check_response` runs on the document the backend verified (assertion
decrypted) and reads every value from the one assertion the signature
covers. ``SsoError`` with a reason code on the first failure; messages never
quote the response. The one cryptographic step, decrypting an encrypted
NameID, is a function the caller passes in (it holds the SP key).

1. The root is a ``samlp:Response``, version 2.0, with an ID, and its
   top-level status is Success (``status``).
2. ``Destination`` MUST equal our ACS URL exactly (``destination``).
3. ``InResponseTo`` MUST equal the pending request id: unsolicited
   (IdP-initiated) responses are refused (``in-response-to``).
4. The response ``Issuer``, if present, MUST be the IdP's entity id (``issuer``).
5. Exactly one assertion in the whole document, a direct child of the
   response, and no encrypted assertion left (``assertion-count``).
6. The signing policy: ``assertion`` needs the assertion's own signature,
   ``response`` the response's, ``either`` one of them; a signature counts
   only if the backend verified it *and* it covers that very element
   (``_signatures.signature_covers``) (``signature``).
7. The assertion: version 2.0, exactly one ``Issuer`` equal to the IdP's
   entity id, ``IssueInstant`` not in the future beyond the skew.
8. ``Conditions``: exactly one; ``NotBefore`` - skew <= now < ``NotOnOrAfter``
   + skew; at least one ``AudienceRestriction`` and every one names our SP
   entity id (``audience``; times: ``not-yet-valid`` / ``expired``).
9. ``Subject``: exactly one identifier, a ``NameID`` or an ``EncryptedID``
   (``subject``). An ``EncryptedID`` is decrypted only here, inside the
   assertion (6) established, by the caller's decrypter
   (``_encrypted_id.decrypt_name_id`` with the SP key; none: ``decryption``);
   a plain ``NameID`` when the connection wants it encrypted is refused
   (``encryption``). The ``NameID`` (decrypted or plain) is plain text (no
   children, no comments), 1-1024 characters, not of the transient format (a
   subject that changes every login cannot name a user); ``SPNameQualifier``
   if present is our entity id (``subject``).
10. At least one bearer ``SubjectConfirmation`` whose data has ``Recipient``
    = our ACS URL, ``InResponseTo`` = the request id, a ``NotOnOrAfter`` in
    the future (with skew) and no ``NotBefore`` in the future
    (``subject-confirmation``).
11. Exactly one ``AuthnStatement`` with an ``AuthnInstant`` not in the
    future; its ``SessionNotOnOrAfter``, if any, not passed (``authn``).
12. Attribute values are read only from plain-text ``AttributeValue``
    elements, bounded in number and length (``attributes``).
13. The replay cache MUST keep the assertion id until the earliest
    ``NotOnOrAfter`` plus the skew (after that the time checks refuse it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from lxml import etree  # type: ignore[import-untyped]  # lxml ships no stubs (lxml-stubs is not a dependency)

from callvault.errors import SsoError
from callvault.sso.saml._backend import VerifiedDocument
from callvault.sso.saml._signatures import signature_covers
from callvault.sso.saml._xml import NS, qname, text_only

_SUCCESS: Final = "urn:oasis:names:tc:SAML:2.0:status:Success"
_BEARER: Final = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
_ENTITY_FORMAT: Final = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
_TRANSIENT_FORMAT: Final = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
MAX_ATTRIBUTE_VALUES: Final = 1000
MAX_VALUE_CHARS: Final = 1024
_SUBJECT_IDS: Final = (
    qname("saml", "BaseID"),
    qname("saml", "NameID"),
    qname("saml", "EncryptedID"),
)

#: Turns the covered assertion's ``saml:EncryptedID`` into its ``saml:NameID`` (``SsoError``
#: if it cannot): ``_encrypted_id.decrypt_name_id`` bound to the connection's SP key.
NameIdDecrypter = Callable[[etree._Element], etree._Element]


@dataclass(frozen=True, slots=True)
class Expected:
    """What the response must say, and when it is being checked."""

    idp_entity_id: str
    sp_entity_id: str
    acs_url: str
    request_id: str
    signing: str
    skew: timedelta
    now: datetime
    #: Refuse a plain ``NameID`` (the connection's ``want_name_id_encrypted``).
    require_encrypted_name_id: bool = False


@dataclass(frozen=True, slots=True)
class CheckedAssertion:
    """The values of an assertion that passed every check."""

    assertion_id: str
    #: Until when the replay cache must remember ``assertion_id``.
    replay_until: datetime
    name_id: str
    authn_instant: datetime
    session_index: str | None
    attributes: dict[str, tuple[str, ...]]


def _fail(message: str, reason: str) -> SsoError:
    return SsoError(message, reason=reason)


def parse_instant(value: str | None, *, what: str) -> datetime:
    """An xs:dateTime with a time zone (SAML requires UTC); ``SsoError`` otherwise."""
    if not value or len(value) > 64:
        raise _fail(f"{what} is missing or malformed", "malformed")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _fail(f"{what} is malformed", "malformed") from None
    if parsed.tzinfo is None:
        raise _fail(f"{what} has no time zone", "malformed")
    return parsed


def _one(parent: etree._Element, path: str, *, reason: str, what: str) -> etree._Element:
    found = parent.findall(path, NS)
    if len(found) != 1:
        raise _fail(f"expected exactly one {what}", reason)
    return found[0]


def _text(element: etree._Element, *, reason: str, what: str) -> str:
    value = text_only(element)
    if value is None:
        raise _fail(f"{what} must be plain text", reason)
    return str(value).strip()


def _check_envelope(root: etree._Element, exp: Expected) -> None:
    # (1):
    if root.tag != qname("samlp", "Response"):
        raise _fail("not a SAML Response", "malformed")
    if root.get("Version") != "2.0" or not root.get("ID"):
        raise _fail("unsupported SAML version or missing ID", "malformed")
    status = root.find("samlp:Status/samlp:StatusCode", NS)
    if status is None or status.get("Value") != _SUCCESS:
        raise _fail("IdP did not report success", "status")
    # (2):
    if root.get("Destination") != exp.acs_url:
        raise _fail("Destination is not this connection's ACS URL", "destination")
    # (3):
    if root.get("InResponseTo") != exp.request_id:
        raise _fail("InResponseTo does not match the pending request", "in-response-to")
    # (4):
    issuers = root.findall("saml:Issuer", NS)
    if len(issuers) > 1:
        raise _fail("more than one response Issuer", "issuer")
    for issuer in issuers:
        if _text(issuer, reason="issuer", what="Issuer") != exp.idp_entity_id:
            raise _fail("response Issuer is not the connection's IdP", "issuer")
        if issuer.get("Format") not in (None, _ENTITY_FORMAT):
            raise _fail("response Issuer has a non-entity format", "issuer")


def _the_assertion(doc: VerifiedDocument, exp: Expected) -> etree._Element:
    root = doc.document
    # (5):
    everywhere = list(root.iter(qname("saml", "Assertion")))
    if (
        len(everywhere) != 1
        or next(root.iter(qname("saml", "EncryptedAssertion")), None) is not None
    ):
        raise _fail("response must contain exactly one assertion", "assertion-count")
    assertion = everywhere[0]
    if assertion.getparent() is not root:
        raise _fail("the assertion is not where a response carries it", "assertion-count")
    # (6):
    response_signed = doc.signed_response and signature_covers(root)
    assertion_signed = doc.signed_assertion and signature_covers(assertion)
    ok = {
        "assertion": assertion_signed,
        "response": response_signed,
        "either": assertion_signed or response_signed,
    }.get(exp.signing, False)
    if not ok:
        raise _fail("no verified signature covers what the connection requires", "signature")
    return assertion


def _check_times(assertion: etree._Element, exp: Expected) -> datetime | None:
    now, skew = exp.now, exp.skew
    # (7):
    if parse_instant(assertion.get("IssueInstant"), what="IssueInstant") > now + skew:
        raise _fail("assertion issued in the future", "not-yet-valid")
    # (8):
    conditions = _one(assertion, "saml:Conditions", reason="conditions", what="Conditions")
    nb = conditions.get("NotBefore")
    if nb is not None and parse_instant(nb, what="NotBefore") > now + skew:
        raise _fail("assertion not yet valid", "not-yet-valid")
    not_after = None
    if (na := conditions.get("NotOnOrAfter")) is not None:
        not_after = parse_instant(na, what="NotOnOrAfter")
        if now - skew >= not_after:
            raise _fail("assertion expired", "expired")
    restrictions = conditions.findall("saml:AudienceRestriction", NS)
    if not restrictions:
        raise _fail("assertion has no audience restriction", "audience")
    for restriction in restrictions:
        audiences = [
            _text(a, reason="audience", what="Audience")
            for a in restriction.findall("saml:Audience", NS)
        ]
        if exp.sp_entity_id not in audiences:
            raise _fail("assertion is not addressed to this SP", "audience")
    return not_after


def _name_id_element(
    subject: etree._Element, exp: Expected, decrypt: NameIdDecrypter | None
) -> etree._Element:
    # (9):
    identifiers = [child for child in subject if child.tag in _SUBJECT_IDS]
    if len(identifiers) != 1 or identifiers[0].tag == qname("saml", "BaseID"):
        raise _fail("expected exactly one NameID or EncryptedID", "subject")
    identifier = identifiers[0]
    if identifier.tag == qname("saml", "NameID"):
        if exp.require_encrypted_name_id:
            raise _fail("the connection requires an encrypted NameID", "encryption")
        return identifier
    if decrypt is None:
        raise _fail("encrypted NameID but no SP key to decrypt it", "decryption")
    return decrypt(identifier)


def _check_subject(
    assertion: etree._Element, exp: Expected, decrypt: NameIdDecrypter | None
) -> tuple[str, datetime]:
    now, skew = exp.now, exp.skew
    subject = _one(assertion, "saml:Subject", reason="subject", what="Subject")
    # (9):
    name_id_el = _name_id_element(subject, exp, decrypt)
    name_id = _text(name_id_el, reason="subject", what="NameID")
    if not name_id or len(name_id) > MAX_VALUE_CHARS:
        raise _fail("NameID is empty or too long", "subject")
    if name_id_el.get("Format") == _TRANSIENT_FORMAT:
        raise _fail("transient NameID cannot identify a user", "subject")
    spnq = name_id_el.get("SPNameQualifier")
    if spnq is not None and spnq != exp.sp_entity_id:
        raise _fail("NameID is qualified for another SP", "subject")
    # (10):
    for sc in subject.findall("saml:SubjectConfirmation", NS):
        data = sc.findall("saml:SubjectConfirmationData", NS)
        if sc.get("Method") != _BEARER or len(data) != 1:
            continue
        scd = data[0]
        if scd.get("Recipient") != exp.acs_url or scd.get("InResponseTo") != exp.request_id:
            continue
        na = scd.get("NotOnOrAfter")
        if na is None or now - skew >= parse_instant(na, what="NotOnOrAfter"):
            continue
        nb = scd.get("NotBefore")
        if nb is not None and parse_instant(nb, what="NotBefore") > now + skew:
            continue
        return name_id, parse_instant(na, what="NotOnOrAfter")
    raise _fail("no valid bearer SubjectConfirmation for this request", "subject-confirmation")


def _check_authn(assertion: etree._Element, exp: Expected) -> tuple[datetime, str | None]:
    # (11):
    statement = _one(assertion, "saml:AuthnStatement", reason="authn", what="AuthnStatement")
    instant = parse_instant(statement.get("AuthnInstant"), what="AuthnInstant")
    if instant > exp.now + exp.skew:
        raise _fail("authentication instant in the future", "authn")
    sna = statement.get("SessionNotOnOrAfter")
    if sna is not None and exp.now - exp.skew >= parse_instant(sna, what="SessionNotOnOrAfter"):
        raise _fail("IdP session expired", "expired")
    index = statement.get("SessionIndex")
    if index is not None and len(index) > MAX_VALUE_CHARS:
        raise _fail("SessionIndex too long", "authn")
    return instant, index


def _attributes(assertion: etree._Element) -> dict[str, tuple[str, ...]]:
    # (12):
    values: dict[str, list[str]] = {}
    count = 0
    for attribute in assertion.findall("saml:AttributeStatement/saml:Attribute", NS):
        name = attribute.get("Name")
        if not name or len(name) > MAX_VALUE_CHARS:
            raise _fail("attribute without a valid name", "attributes")
        kept = values.setdefault(name, [])
        for element in attribute.findall("saml:AttributeValue", NS):
            count += 1
            if count > MAX_ATTRIBUTE_VALUES:
                raise _fail("too many attribute values", "attributes")
            value = text_only(element)
            if value is None:
                continue  # structured values (e.g. a nested NameID) are not used here
            value = str(value).strip()
            if len(value) > MAX_VALUE_CHARS:
                raise _fail("attribute value too long", "attributes")
            if value:
                kept.append(value)
    return {name: tuple(v) for name, v in values.items()}


def check_response(
    doc: VerifiedDocument, exp: Expected, *, decrypt_name_id: NameIdDecrypter | None = None
) -> CheckedAssertion:
    """Steps (1)-(13) of the module docstring.

    ``decrypt_name_id`` is called at most once, on the ``EncryptedID`` of the
    assertion step (6) established, after its times were checked.
    """
    if exp.now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    root = doc.document
    _check_envelope(root, exp)
    assertion = _the_assertion(doc, exp)
    # (7):
    if assertion.get("Version") != "2.0" or not assertion.get("ID"):
        raise _fail("unsupported assertion version or missing ID", "malformed")
    issuer = _one(assertion, "saml:Issuer", reason="issuer", what="assertion Issuer")
    if _text(issuer, reason="issuer", what="Issuer") != exp.idp_entity_id:
        raise _fail("assertion Issuer is not the connection's IdP", "issuer")
    if issuer.get("Format") not in (None, _ENTITY_FORMAT):
        raise _fail("assertion Issuer has a non-entity format", "issuer")
    not_after = _check_times(assertion, exp)
    name_id, scd_not_after = _check_subject(assertion, exp, decrypt_name_id)
    authn_instant, session_index = _check_authn(assertion, exp)
    # (13):
    earliest = min(scd_not_after, not_after) if not_after is not None else scd_not_after
    return CheckedAssertion(
        assertion_id=str(assertion.get("ID")),
        replay_until=earliest + exp.skew,
        name_id=name_id,
        authn_instant=authn_instant,
        session_index=None if session_index is None else str(session_index),
        attributes=_attributes(assertion),
    )
