"""The tokenization vault: card numbers in, tokens out; a card leaves only to a connector.

Keys. Each deployment of a tenant has a vault with keys of its own in the key
hierarchy (owner kind :data:`VAULT_OWNER_KIND`, owner id the deployment id,
wrapped by the deployment's KEK like every data key):

- purpose ``pan``: seals card numbers (the envelope recipe of
  :mod:`callvault.crypto`), each bound to its call and token id, so a sealed
  card moved to another row does not open;
- purpose ``pan-fingerprint``: the HMAC key (derived with HKDF) of the
  fingerprint ``HMAC-SHA256(key, call id ‖ 0x00 ‖ PAN)`` that finds the token
  of a card already given in the same call. A fingerprint is useless without
  the key (a plain hash of a PAN falls to a search of its ~10⁹ candidates)
  and differs from call to call, so rows cannot be linked across calls.

Call keys (owner kind ``call``) never seal a card, so shredding a call leaves
its tokens, and shredding a vault leaves every call.

Nothing here logs or raises with a card number or security code: errors
carry ids, counts and field names; audit entries ids, counts and flags.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from contextlib import AbstractContextManager, nullcontext
from typing import Final

import rfc8785
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callvault.access import Action, Grant, ResourceKind
from callvault.audit import AuditEvent, AuditLog, Outcome
from callvault.audit._entry import OCSF_API_ACTIVITY
from callvault.crypto import SealContext, open_value, seal_value
from callvault.crypto.hazmat import hkdf_sha256
from callvault.errors import (
    ConflictError,
    DecryptionError,
    Error,
    InvalidInputError,
    KeyUnavailableError,
    NotFoundError,
    PermissionDeniedError,
)
from callvault.keys import KeyHierarchy, KeyOwner
from callvault.payments._card import card_facts, normalise_pan
from callvault.payments._connector import (
    ConnectorRequest,
    ConnectorResult,
    PaymentConnector,
    PaymentConnectorError,
    check_connector_name,
)
from callvault.payments._cvv import CvvUnavailableError, EphemeralCvv
from callvault.payments._token import SOURCES, CardToken, Source, is_token_id, new_token_id
from callvault.store.models import Call, PaymentToken, utcnow

log = logging.getLogger("callvault.payments")

VAULT_OWNER_KIND: Final = "payments_vault"
PAN_PURPOSE: Final = "pan"
FINGERPRINT_PURPOSE: Final = "pan-fingerprint"
_FINGERPRINT_INFO: Final = b"callvault/payments/pan-fingerprint/v1\x00"
_SYSTEM_ACTOR: Final = "system:payments"
_ERROR_CLASS: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


def _zero(buf: bytearray) -> None:
    buf[:] = bytes(len(buf))


def _token(row: PaymentToken) -> CardToken:
    return CardToken(
        id=row.id,
        call_id=row.call_id,
        last4=row.last4,
        brand=row.brand,
        digits=row.digits,
        luhn_valid=row.luhn_valid,
        source=row.source,
        created_at=row.created_at,
    )


def _pan_context(tenant_id: str, deployment_id: str, call_id: str, token_id: str) -> SealContext:
    return SealContext(
        tenant_id=tenant_id,
        deployment_id=deployment_id,
        purpose=PAN_PURPOSE,
        object_id=f"{call_id}/{token_id}",
        owner_kind=VAULT_OWNER_KIND,
        owner_id=deployment_id,
    )


class TokenVault:
    """Tokenizes card numbers and hands them, and only them, to payment connectors."""

    def __init__(self, keys: KeyHierarchy, audit: AuditLog) -> None:
        self._keys = keys
        self._audit = audit

    # -- keys ------------------------------------------------------------------

    @staticmethod
    def owner(tenant_id: str, deployment_id: str, purpose: str) -> KeyOwner:
        """The key owner of a deployment's vault (what :meth:`KeyHierarchy.shred` takes)."""
        return KeyOwner(tenant_id, deployment_id, VAULT_OWNER_KIND, deployment_id, purpose)

    def _fingerprint(
        self, session: Session, tenant_id: str, deployment_id: str, call_id: str, digits: str
    ) -> bytes:
        owner = self.owner(tenant_id, deployment_id, FINGERPRINT_PURPOSE)
        data_key = self._keys.data_key(session, owner, create=True)
        scope = rfc8785.dumps({"tenant": tenant_id, "deployment": deployment_id})
        key = hkdf_sha256(data_key, info=_FINGERPRINT_INFO + scope)
        return hmac.new(key, call_id.encode() + b"\x00" + digits.encode(), hashlib.sha256).digest()

    # -- tokenize --------------------------------------------------------------

    def tokenize(
        self,
        session: Session,
        tenant_id: str,
        deployment_id: str,
        call_id: str,
        pan: str,
        *,
        source: Source,
        actor: str = _SYSTEM_ACTOR,
        request_id: str | None = None,
    ) -> CardToken:
        """The token for ``pan`` in this call: the existing one, or a new one.

        ``session`` MUST be the tenant's transaction: the token row, the vault
        keys made for it and its audit entry commit together. The audit entry
        takes the tenant's log head lock until that transaction ends.

        1. Parse the number: 12 to 19 ASCII digits once spaces and hyphens are
           dropped; else :class:`InvalidInputError` with the digit count only.
           A number that fails the Luhn check is still tokenized, and says so
           (``luhn_valid``), so the agent can ask again.
        2. The call MUST be the tenant's and in ``deployment_id``; else
           :class:`NotFoundError`.
        3. Fingerprint the number under the vault's fingerprint key, bound to the call.
        4. A token with that fingerprint in this call: return it.
        5. Else seal the number under the vault's ``pan`` key, bound to the call
           and the new token id, and store it with the last four digits, the
           brand, the digit count and the Luhn result. Two transactions making
           the same token at once: the second gets :class:`ConflictError` (retry).
        6. Audit ``payments.tokenize`` in this transaction: ids, counts, flags.
        """
        if source not in SOURCES:
            raise InvalidInputError("source must be dtmf, speech or agent", field="source")
        # (1):
        digits = normalise_pan(pan)
        facts = card_facts(digits)
        # (2):
        call_deployment = session.execute(
            select(Call.deployment_id).where(Call.tenant_id == tenant_id, Call.id == call_id)
        ).scalar_one_or_none()
        if call_deployment is None or call_deployment != deployment_id:
            raise NotFoundError("call not found", field="call_id")
        try:
            # (3):
            fingerprint = self._fingerprint(session, tenant_id, deployment_id, call_id, digits)
            # (4):
            row = session.execute(
                select(PaymentToken).where(
                    PaymentToken.tenant_id == tenant_id,
                    PaymentToken.call_id == call_id,
                    PaymentToken.fingerprint == fingerprint,
                )
            ).scalar_one_or_none()
            reused = row is not None
            # (5):
            if row is None:
                token_id = new_token_id()
                data_key = self._keys.data_key(
                    session, self.owner(tenant_id, deployment_id, PAN_PURPOSE), create=True
                )
                sealed = seal_value(
                    data_key,
                    digits.encode("ascii"),
                    _pan_context(tenant_id, deployment_id, call_id, token_id),
                )
                row = PaymentToken(
                    id=token_id,
                    tenant_id=tenant_id,
                    deployment_id=deployment_id,
                    call_id=call_id,
                    source=source,
                    digits=facts.digits,
                    last4=facts.last4,
                    brand=facts.brand,
                    luhn_valid=facts.luhn_valid,
                    fingerprint=fingerprint,
                    pan_sealed=sealed,
                    created_at=utcnow(),
                )
                session.add(row)
                session.flush()
        except IntegrityError:
            raise ConflictError(
                "the same card is being tokenized concurrently in this call; retry",
                field="pan",
            ) from None
        # (6):
        self._audit.append_in(
            session,
            tenant_id,
            AuditEvent(
                action="payments.tokenize",
                outcome=Outcome.SUCCESS,
                actor=actor,
                resource_kind="payment_token",
                resource_id=row.id,
                request_id=request_id,
                ocsf_class=OCSF_API_ACTIVITY,
                detail={
                    "call": call_id,
                    "deployment": deployment_id,
                    "source": source,
                    "digits": facts.digits,
                    "luhn_valid": facts.luhn_valid,
                    "reused": reused,
                },
            ),
        )
        return _token(row)

    def get(self, session: Session, tenant_id: str, token_id: str) -> CardToken:
        """A token's public view (no card number); :class:`NotFoundError` if not the tenant's."""
        return _token(self._row(session, tenant_id, token_id))

    @staticmethod
    def _row(session: Session, tenant_id: str, token_id: str) -> PaymentToken:
        # The given id is never quoted back: a caller might pass a card number by mistake.
        if not is_token_id(token_id):
            raise NotFoundError("card token not found", field="token_id")
        row = session.execute(
            select(PaymentToken).where(
                PaymentToken.tenant_id == tenant_id, PaymentToken.id == token_id
            )
        ).scalar_one_or_none()
        if row is None:
            raise NotFoundError("card token not found", field="token_id")
        return row

    # -- detokenize ------------------------------------------------------------

    def detokenize_to_connector(
        self,
        session: Session,
        grant: Grant,
        token_id: str,
        connector: PaymentConnector,
        *,
        cvv: EphemeralCvv | None = None,
        request_id: str | None = None,
    ) -> ConnectorResult:
        """Send the card behind ``token_id`` (and ``cvv``) to ``connector``; return its reference.

        The card number is never returned: the caller gets the connector's
        reference and status only.

        1. ``grant`` MUST be for :attr:`Action.PAYMENTS_DETOKENIZE` on the
           token's call (a grant from :meth:`callvault.access.Gate.enforce` on
           that call's resource); else :class:`PermissionDeniedError`. The
           token MUST be the grant's tenant's; else :class:`NotFoundError`.
           A ``cvv`` MUST still be usable; else :class:`CvvUnavailableError`.
        2. Append ``payments.detokenize`` (outcome ``allowed``; ids only: token,
           call, connector) and wait until it is committed. If that fails,
           :class:`AuditUnavailableError` propagates: nothing was opened or sent.
        3. Open the card number into a buffer callvault owns.
        4. Send it (and the code, consumed once) to the connector; the buffers
           are zeroed when ``send`` returns or raises. Any failure is a
           :class:`PaymentConnectorError` naming the connector and a class.
           A reply that quotes the card number is refused as a failure.
        5. Append ``payments.detokenize.result`` (success or failure, the
           connector's status and reference). The card has left by then, so a
           failure to write this second entry is logged (ids only) and does not
           hide the processor's answer; the entry of step 2 already records the
           disclosure.

        ``session`` MUST NOT hold uncommitted writes (on SQLite the committed
        audit append of step 2 would wait for it).
        """
        # (1):
        if grant.action is not Action.PAYMENTS_DETOKENIZE:
            raise PermissionDeniedError("grant does not cover payments:detokenize")
        name = check_connector_name(connector.name)
        tenant_id = grant.resource.tenant_id
        if grant.principal.tenant_id != tenant_id:
            raise PermissionDeniedError("grant does not cover payments:detokenize")
        row = self._row(session, tenant_id, token_id)
        grant.require(Action.PAYMENTS_DETOKENIZE, resource_id=row.call_id)
        # The grant was decided on the scopes its resource named: they MUST be the call's own.
        call = session.execute(
            select(Call.deployment_id, Call.agent_id).where(
                Call.tenant_id == tenant_id, Call.id == row.call_id
            )
        ).one_or_none()
        res = grant.resource
        if (
            res.kind is not ResourceKind.CALL
            or call is None
            or (res.deployment_id, res.agent_id) != (row.deployment_id, call.agent_id)
            or call.deployment_id != row.deployment_id
        ):
            raise PermissionDeniedError("grant does not cover this card token")
        if cvv is not None and not cvv.available:
            raise CvvUnavailableError
        detail: dict[str, object] = {"call": row.call_id, "connector": name, "cvv": cvv is not None}
        # (2):
        self._audit.append(
            tenant_id,
            self._event(grant, token_id, Outcome.ALLOWED, request_id, detail),
        )
        # (3), (4):
        result, failure = self._send(session, row, connector, name, cvv)
        # (5):
        if failure is not None:
            detail["error"] = type(failure).__name__
            if isinstance(failure, PaymentConnectorError):
                detail |= {"error": failure.error_class, "http_status": failure.status}
        if result is not None:
            detail |= {"status": result.status, "reference": result.reference}
        outcome = Outcome.SUCCESS if result is not None else Outcome.FAILURE
        try:
            self._audit.append(
                tenant_id,
                self._event(grant, token_id, outcome, request_id, detail, suffix=".result"),
            )
        except Exception as exc:  # noqa: BLE001 - the card may have left; the answer must reach the caller
            log.error(
                "payments: result of a card hand-off could not be audited",
                extra={"token_id": token_id, "connector": name, "error_type": type(exc).__name__},
            )
        if result is None:
            raise failure or PaymentConnectorError(name, "NoResult")
        log.info(
            "payments: card handed to connector",
            extra={"token_id": token_id, "connector": name, "status": result.status},
        )
        return result

    def _send(
        self,
        session: Session,
        row: PaymentToken,
        connector: PaymentConnector,
        name: str,
        cvv: EphemeralCvv | None,
    ) -> tuple[ConnectorResult | None, Error | None]:
        """Steps 3 and 4: the outcome as a value; a failure is never chained to its cause
        (which may hold the request, card included)."""
        owner = self.owner(row.tenant_id, row.deployment_id, PAN_PURPOSE)
        ctx = _pan_context(row.tenant_id, row.deployment_id, row.call_id, row.id)
        try:
            data_key = self._keys.data_key(session, owner, create=False)
            pan = bytearray(open_value(data_key, row.pan_sealed, ctx))
        except (DecryptionError, KeyUnavailableError) as exc:  # shredded or unusable vault key
            return None, exc
        error: str | None = None
        status: int | None = None
        result: ConnectorResult | None = None
        try:
            lend: AbstractContextManager[bytearray | None] = (
                cvv.consume() if cvv is not None else nullcontext()
            )
            with lend as code:
                answer = connector.send(ConnectorRequest(row.id, pan, code))
            if not isinstance(answer, ConnectorResult) or (answer.token_id, answer.connector) != (
                row.id,
                name,
            ):
                error = "MalformedReply"
            elif pan in answer.reference.encode() or pan in answer.status.encode():
                error = "ReplyQuotesCard"
            else:
                result = answer
        except CvvUnavailableError:  # expired between the check and the send: nothing was sent
            error = "CvvUnavailableError"
        except (
            PaymentConnectorError
        ) as exc:  # a connector's own: keep its class word and status only
            error = exc.error_class if _ERROR_CLASS.fullmatch(str(exc.error_class)) else "Error"
            status = exc.status if isinstance(exc.status, int) else None
        except Exception as exc:  # noqa: BLE001 - every failure becomes one error naming its class only
            error = type(exc).__name__
        finally:
            _zero(pan)
        if error == "CvvUnavailableError":
            return None, CvvUnavailableError()
        if error is not None:
            return None, PaymentConnectorError(name, error, status=status)
        return result, None

    @staticmethod
    def _event(
        grant: Grant,
        token_id: str,
        outcome: Outcome,
        request_id: str | None,
        detail: dict[str, object],
        *,
        suffix: str = "",
    ) -> AuditEvent:
        return AuditEvent(
            action="payments.detokenize" + suffix,
            outcome=outcome,
            actor=grant.principal.id,
            resource_kind="payment_token",
            resource_id=token_id,
            request_id=request_id,
            ocsf_class=OCSF_API_ACTIVITY,
            detail={**detail, "grant_audit_index": grant.audit_index},
        )
