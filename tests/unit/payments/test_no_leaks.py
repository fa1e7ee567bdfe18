"""Every failure path of the vault, forced: no digit run of the card in any error or log.

Each scenario makes one thing go wrong and returns the exception it raised.
The exception's text, its repr, its full formatted chain (causes and
contexts, with the source lines of every frame) and everything logged at any
level while it happened MUST hold no fragment of the card number; so MUST
the tenant's audit log afterwards.
"""

from __future__ import annotations

import json
import logging
import socket
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest

from callvault.access import Action
from callvault.errors import (
    AuditUnavailableError,
    DecryptionError,
    Error,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from callvault.payments import (
    VAULT_OWNER_KIND,
    ConnectorRequest,
    ConnectorResult,
    CvvUnavailableError,
    EphemeralCvv,
    HttpPaymentConnector,
    PaymentConnectorError,
    TokenVault,
)
from callvault.runtime import Runtime
from tests.support.processor import SECRET, Processor, write_self_signed
from tests.unit.payments.cardnumbers import PAN, leaks
from tests.unit.payments.conftest import Cards

CVV = "9264"


class Env:
    def __init__(
        self,
        rt: Runtime,
        vault: TokenVault,
        cards: Cards,
        processor: Processor,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
    ) -> None:
        self.rt, self.vault, self.cards, self.processor = rt, vault, cards, processor
        self.monkeypatch, self.tmp_path = monkeypatch, tmp_path

    def tokenize(self, pan: str = PAN) -> str:
        dep, _agent, call = self.cards.call(0)
        with self.rt.db.tenant_tx(self.cards.tenant) as s:
            return self.vault.tokenize(s, self.cards.tenant, dep, call, pan, source="speech").id

    def hand_off(
        self,
        connector: object | None = None,
        token_id: str | None = None,
        action: Action = Action.PAYMENTS_DETOKENIZE,
        cvv: EphemeralCvv | None = None,
    ) -> None:
        token_id = token_id or self.tokenize()
        grant = self.cards.grant(0, action)
        with self.rt.db.tenant_tx(self.cards.tenant) as s:
            self.vault.detokenize_to_connector(
                s,
                grant,
                token_id,
                connector or self.processor.connector(),  # type: ignore[arg-type]
                cvv=cvv if cvv is not None else EphemeralCvv(CVV),
            )


class CardQuotingConnector:
    """A connector whose failure (or reply) quotes what it was sent."""

    name = "quoting"

    def __init__(self, *, reply: bool) -> None:
        self.reply = reply

    def send(self, request: ConnectorRequest) -> ConnectorResult:
        card = request.pan.decode()
        if self.reply:
            return ConnectorResult(self.name, request.token_id, f"ref-{card}", "authorized")
        raise RuntimeError(f"card {card} cvv {request.cvv!r} was declined")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def number_too_long(env: Env) -> None:
    env.tokenize(PAN + "0000")


def number_too_short(env: Env) -> None:
    env.tokenize(PAN[:11])


def number_with_a_letter(env: Env) -> None:
    env.tokenize(PAN[:6] + "O" + PAN[7:])


def malformed_cvv(_env: Env) -> None:
    EphemeralCvv(PAN[:5])


def grant_for_another_action(env: Env) -> None:
    env.hand_off(action=Action.CALL_APPEND)


def card_number_given_as_token_id(env: Env) -> None:
    env.hand_off(token_id=PAN)


def audit_unavailable(env: Env) -> None:
    token_id = env.tokenize()

    def refuse(*_args: object, **_kwargs: object) -> list[int]:
        raise AuditUnavailableError("audit log is not writable")

    env.monkeypatch.setattr(env.rt.audit, "append", refuse)
    env.hand_off(token_id=token_id)


def cvv_already_used(env: Env) -> None:
    cvv = EphemeralCvv(CVV)
    with cvv.consume():
        pass
    env.hand_off(cvv=cvv)


def vault_shredded(env: Env) -> None:
    token_id = env.tokenize()
    dep = env.cards.call(0)[0]
    with env.rt.db.tenant_tx(env.cards.tenant) as s:
        env.rt.keys.shred(s, env.cards.tenant, VAULT_OWNER_KIND, dep)
    env.hand_off(token_id=token_id)


def processor_500_quoting_the_card(env: Env) -> None:
    env.processor.script.append((500, json.dumps({"error": f"bad card {PAN}"}).encode()))
    env.hand_off()


def processor_reply_quoting_the_card(env: Env) -> None:
    reply = {"reference": PAN, "status": "authorized"}
    env.processor.script.append((200, json.dumps(reply).encode()))
    env.hand_off()


def processor_unreachable(env: Env) -> None:
    url = f"https://127.0.0.1:{_closed_port()}/"
    env.hand_off(HttpPaymentConnector("acme-pay", url, secret=SECRET))


def processor_certificate_untrusted(env: Env) -> None:
    stranger, _key = write_self_signed(env.tmp_path, "stranger")
    env.hand_off(env.processor.connector(ca_file=stranger))


def connector_raises_quoting_the_card(env: Env) -> None:
    env.hand_off(CardQuotingConnector(reply=False))


def connector_result_quoting_the_card(env: Env) -> None:
    env.hand_off(CardQuotingConnector(reply=True))


def plain_http_url_holding_the_card(_env: Env) -> None:
    HttpPaymentConnector("acme-pay", f"http://pay.example/{PAN}", secret=SECRET)


SCENARIOS: dict[str, tuple[type[Error], Callable[[Env], None]]] = {
    f.__name__: (error, f)
    for error, f in [
        (InvalidInputError, number_too_long),
        (InvalidInputError, number_too_short),
        (InvalidInputError, number_with_a_letter),
        (InvalidInputError, malformed_cvv),
        (PermissionDeniedError, grant_for_another_action),
        (NotFoundError, card_number_given_as_token_id),
        (AuditUnavailableError, audit_unavailable),
        (CvvUnavailableError, cvv_already_used),
        (DecryptionError, vault_shredded),
        (PaymentConnectorError, processor_500_quoting_the_card),
        (PaymentConnectorError, processor_reply_quoting_the_card),
        (PaymentConnectorError, processor_unreachable),
        (PaymentConnectorError, processor_certificate_untrusted),
        (PaymentConnectorError, connector_raises_quoting_the_card),
        (PaymentConnectorError, connector_result_quoting_the_card),
        (InvalidInputError, plain_http_url_holding_the_card),
    ]
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_failure_paths_never_show_the_card(
    scenario: str,
    rt: Runtime,
    vault: TokenVault,
    cards: Cards,
    processor: Processor,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    expected, run = SCENARIOS[scenario]
    env = Env(rt, vault, cards, processor, monkeypatch, tmp_path)
    with pytest.raises(expected) as info:
        run(env)
    exc = info.value
    shown = "\n".join([str(exc), repr(exc), *traceback.format_exception(exc), repr(vars(exc))])
    assert leaks(shown) == [], shown
    assert CVV not in str(exc)
    assert leaks(caplog.text) == [], caplog.text
    monkeypatch.undo()  # the audit log again, to read it
    with rt.db.tenant_tx(cards.tenant) as s:
        entries = rt.audit.read(s, cards.tenant, start=0, limit=1_000_000)
    assert leaks(b"".join(e for _i, e in entries)) == []
    # Only the scenarios that fail at or after the processor reached it.
    reached = {"processor_500_quoting_the_card", "processor_reply_quoting_the_card"}
    assert len(processor.seen) == (1 if scenario in reached else 0)
