"""The tokenization vault end to end: tokens in calls, hand-off to a real HTTPS processor."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from callvault.access import Action, Binding, Principal, Resource, Role, ScopeKind
from callvault.access.roles import ROLE_ACTIONS
from callvault.crypto import SealContext, open_value
from callvault.errors import (
    AuditUnavailableError,
    DecryptionError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from callvault.keys import KeyOwner, shred_call
from callvault.payments import (
    FINGERPRINT_PURPOSE,
    PAN_PURPOSE,
    VAULT_OWNER_KIND,
    CardToken,
    ConnectorResult,
    EphemeralCvv,
    TokenVault,
    is_token_id,
)
from callvault.payments._vault import _pan_context
from callvault.runtime import Runtime
from callvault.store.models import Call, DataKey, PaymentToken
from tests.support.processor import SECRET, Processor
from tests.support.world import CALLER_NUMBER, World
from tests.unit.payments.cardnumbers import BAD_LUHN_PAN, OTHER_PAN, PAN, SPOKEN, leaks
from tests.unit.payments.conftest import Cards


def _tokenize(
    rt: Runtime, vault: TokenVault, cards: Cards, pan: str = PAN, n: int = 0
) -> CardToken:
    dep, _agent, call = cards.call(n)
    with rt.db.tenant_tx(cards.tenant) as s:
        return vault.tokenize(s, cards.tenant, dep, call, pan, source="dtmf")


def _audit(rt: Runtime, tenant: str) -> list[dict[str, Any]]:
    with rt.db.tenant_tx(tenant) as s:
        raw = rt.audit.read(s, tenant, start=0, limit=1_000_000)
    return [json.loads(entry) for _i, entry in raw]


def _payment_entries(rt: Runtime, tenant: str) -> list[dict[str, Any]]:
    return [e for e in _audit(rt, tenant) if e["action"].startswith("payments.")]


def _caller_number(rt: Runtime, tenant: str, call_id: str) -> bytes:
    with rt.db.tenant_tx(tenant) as s:
        call = s.get_one(Call, call_id)
        assert call.caller_number_sealed is not None
        ctx = SealContext(
            tenant_id=tenant,
            deployment_id=call.deployment_id,
            purpose="caller-number",
            object_id=call.id,
            owner_kind="call",
            owner_id=call.id,
        )
        return rt.sealer.open(s, call.caller_number_sealed, ctx)


# -- the round trip ----------------------------------------------------------------


def test_card_round_trips_to_a_verified_https_processor_and_only_a_reference_comes_back(
    rt: Runtime,
    vault: TokenVault,
    cards: Cards,
    processor: Processor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    dep, _agent, call = cards.call(0)
    with rt.db.tenant_tx(cards.tenant) as s:
        token = vault.tokenize(s, cards.tenant, dep, call, SPOKEN, source="speech")
    assert is_token_id(token.id)
    assert token.display == f"[CARD {token.id} ending {PAN[-4:]}]"
    assert (token.call_id, token.digits, token.luhn_valid, token.brand, token.source) == (
        call,
        16,
        True,
        "visa",
        "speech",
    )
    for shown in (repr(token), str(token), f"{token}", json.dumps(token.as_dict())):
        assert leaks(shown) == []
    assert str(token) == token.display

    cvv = EphemeralCvv(bytearray(b"737"))
    grant = cards.grant(0)
    with rt.db.tenant_tx(cards.tenant) as s:
        result = vault.detokenize_to_connector(
            s, grant, token.id, processor.connector(), cvv=cvv, request_id="req-pay-1"
        )

    # The processor got the card, the code and the token, with its secret, over TLS.
    assert [json.loads(seen.body) for seen in processor.seen] == [
        {"token": token.id, "pan": PAN, "cvv": "737"}
    ]
    seen = processor.seen[0]
    assert seen.path == "/v1/card-handoff"
    assert seen.headers["Authorization"] == f"Bearer {SECRET}"
    assert seen.headers["Content-Type"] == "application/json"
    # The caller got the processor's reference and status, nothing of the card.
    assert result == ConnectorResult("acme-pay", token.id, "auth_000123", "authorized")
    assert leaks(repr(result)) == []
    assert cvv.state == "used"
    # The audit trail: tokenized, allowed (committed before the hand-off), succeeded.
    entries = _payment_entries(rt, cards.tenant)
    assert [(e["action"], e["outcome"]) for e in entries] == [
        ("payments.tokenize", "success"),
        ("payments.detokenize", "allowed"),
        ("payments.detokenize.result", "success"),
    ]
    tokenized, allowed, finished = entries
    assert tokenized["resource"] == {"kind": "payment_token", "id": token.id}
    assert tokenized["detail"] == {
        "call": call,
        "deployment": dep,
        "source": "speech",
        "digits": 16,
        "luhn_valid": True,
        "reused": False,
    }
    assert allowed["actor"] == cards.operator().id
    assert allowed["request_id"] == "req-pay-1"
    assert allowed["resource"] == {"kind": "payment_token", "id": token.id}
    assert allowed["detail"] == {
        "call": call,
        "connector": "acme-pay",
        "cvv": True,
        "grant_audit_index": grant.audit_index,
    }
    assert finished["detail"]["status"] == "authorized"
    assert finished["detail"]["reference"] == "auth_000123"
    assert leaks(json.dumps(_audit(rt, cards.tenant))) == []
    assert leaks(caplog.text) == []


def test_a_card_can_be_handed_off_again_without_a_code(
    rt: Runtime, vault: TokenVault, cards: Cards, processor: Processor
) -> None:
    token = _tokenize(rt, vault, cards)
    grant = cards.grant(0)
    for _ in range(2):
        with rt.db.tenant_tx(cards.tenant) as s:
            vault.detokenize_to_connector(s, grant, token.id, processor.connector())
    assert [json.loads(seen.body) for seen in processor.seen] == [
        {"token": token.id, "pan": PAN}
    ] * 2


# -- tokens ---------------------------------------------------------------------------


def test_same_card_in_the_same_call_is_one_token_and_other_calls_get_their_own(
    rt: Runtime, vault: TokenVault, cards: Cards
) -> None:
    first = _tokenize(rt, vault, cards, PAN)
    again = _tokenize(rt, vault, cards, SPOKEN)  # said differently, later, another transaction
    dep, _agent, call = cards.call(0)
    with rt.db.tenant_tx(cards.tenant) as s:  # and twice in one transaction
        same = [vault.tokenize(s, cards.tenant, dep, call, PAN, source="agent") for _ in range(2)]
    other_call = _tokenize(rt, vault, cards, PAN, n=1)
    other_card = _tokenize(rt, vault, cards, OTHER_PAN)
    assert {again.id, same[0].id, same[1].id} == {first.id}
    assert again.source == "dtmf"  # the token keeps how the card first came
    assert len({first.id, other_call.id, other_card.id}) == 3
    with rt.db.tenant_tx(cards.tenant) as s:
        rows = s.execute(select(PaymentToken)).scalars().all()
        assert len(rows) == 3
        fingerprints = {r.fingerprint for r in rows}
    # Keyed, per call: neither a plain hash of the card nor linkable across calls.
    assert len(fingerprints) == 3
    assert hashlib.sha256(PAN.encode()).digest() not in fingerprints
    reused = [e["detail"]["reused"] for e in _payment_entries(rt, cards.tenant)]
    assert reused == [False, True, True, True, False, False]


def test_luhn_invalid_number_is_tokenized_and_reported(
    rt: Runtime, vault: TokenVault, cards: Cards
) -> None:
    token = _tokenize(rt, vault, cards, BAD_LUHN_PAN)
    assert (token.luhn_valid, token.digits, token.brand) == (False, 16, "visa")
    assert token.display.endswith(f"ending {BAD_LUHN_PAN[-4:]}]")
    assert token.as_dict()["luhn_valid"] is False
    assert _tokenize(rt, vault, cards, PAN).id != token.id


def test_tokenize_refuses_a_call_of_another_deployment_or_tenant(
    rt: Runtime, vault: TokenVault, cards: Cards, world: World
) -> None:
    dep0, _agent, call0 = cards.call(0)
    dep1 = cards.call(1)[0]
    with pytest.raises(NotFoundError), rt.db.tenant_tx(cards.tenant) as s:
        vault.tokenize(s, cards.tenant, dep1, call0, PAN, source="dtmf")
    with pytest.raises(NotFoundError), rt.db.tenant_tx(cards.tenant) as s:
        vault.tokenize(s, cards.tenant, dep0, world.b.calls[0], PAN, source="dtmf")
    with pytest.raises(InvalidInputError), rt.db.tenant_tx(cards.tenant) as s:
        vault.tokenize(s, cards.tenant, dep0, call0, PAN, source="email")  # type: ignore[arg-type]
    with rt.db.tenant_tx(cards.tenant) as s:
        assert s.execute(select(func.count()).select_from(PaymentToken)).scalar_one() == 0


def test_get_returns_the_public_view_only(rt: Runtime, vault: TokenVault, cards: Cards) -> None:
    token = _tokenize(rt, vault, cards)
    with rt.db.tenant_tx(cards.tenant) as s:
        assert vault.get(s, cards.tenant, token.id) == token
    with pytest.raises(NotFoundError), rt.db.tenant_tx(cards.world.b.id) as s:
        vault.get(s, cards.world.b.id, token.id)


# -- the database holds the card only sealed ----------------------------------------


def _files_under(root: Path) -> bytes:
    out = bytearray()
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            out += (Path(dirpath) / name).read_bytes()
    return bytes(out)


def test_the_database_holds_the_card_only_inside_the_sealed_blob(
    rt: Runtime, vault: TokenVault, cards: Cards
) -> None:
    token = _tokenize(rt, vault, cards)
    dep, _agent, call = cards.call(0)
    with rt.db.tenant_tx(cards.tenant) as s:
        (row,) = s.execute(text("SELECT * FROM payment_tokens")).mappings().all()
        sealed = s.get_one(PaymentToken, token.id).pan_sealed
        # The sealed blob does hold the card (so the searches below are not vacuous)...
        key = rt.keys.data_key(s, TokenVault.owner(cards.tenant, dep, PAN_PURPOSE), create=False)
        assert open_value(key, sealed, _pan_context(cards.tenant, dep, call, token.id)) == (
            PAN.encode()
        )
    # ...and no column of the row, as stored, holds it or a fragment, a plain hash or a spaced form.
    stored = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in row.values())
    plain_hashes = (hashlib.sha256(PAN.encode()).digest(), hashlib.sha256(PAN.encode()).hexdigest())
    assert leaks(stored) == []
    assert all(h not in stored for h in (plain_hashes[0], plain_hashes[1].encode()))
    assert row["last4"] == PAN[-4:]
    # Nor does any file the installation wrote: the database, its WAL, the keyring.
    rt.db.engine.dispose()
    on_disk = _files_under(rt.settings.data_dir)
    assert sealed in on_disk  # the scan does see the token table
    assert leaks(on_disk) == []
    assert plain_hashes[0] not in on_disk
    assert plain_hashes[1].encode() not in on_disk


def test_vault_keys_are_its_own_not_the_calls(rt: Runtime, vault: TokenVault, cards: Cards) -> None:
    _tokenize(rt, vault, cards)
    dep = cards.call(0)[0]
    with rt.db.tenant_tx(cards.tenant) as s:
        keys = s.execute(
            select(
                DataKey.owner_kind, DataKey.owner_id, DataKey.purpose, DataKey.deployment_id
            ).where(DataKey.owner_kind == VAULT_OWNER_KIND)
        ).all()
    assert sorted(keys) == [
        (VAULT_OWNER_KIND, dep, PAN_PURPOSE, dep),
        (VAULT_OWNER_KIND, dep, FINGERPRINT_PURPOSE, dep),
    ]


# -- shredding -------------------------------------------------------------------------


def test_shredding_a_call_leaves_its_card_tokens(
    rt: Runtime, vault: TokenVault, cards: Cards, processor: Processor
) -> None:
    token = _tokenize(rt, vault, cards)
    dep, _agent, call = cards.call(0)
    assert shred_call(rt.db, rt.keys, rt.audit, cards.tenant, call, actor="test") == 1
    with pytest.raises(DecryptionError), rt.db.tenant_tx(cards.tenant) as s:
        rt.keys.data_key(s, KeyOwner(cards.tenant, dep, "call", call), create=False)
    with pytest.raises(DecryptionError):
        _caller_number(rt, cards.tenant, call)
    with rt.db.tenant_tx(cards.tenant) as s:
        vault.detokenize_to_connector(s, cards.grant(0), token.id, processor.connector())
    assert json.loads(processor.seen[0].body)["pan"] == PAN


def test_shredding_a_vault_leaves_the_calls_and_other_vaults(
    rt: Runtime, vault: TokenVault, cards: Cards, processor: Processor
) -> None:
    token = _tokenize(rt, vault, cards)
    elsewhere = _tokenize(rt, vault, cards, n=1)
    dep, _agent, call = cards.call(0)
    with rt.db.tenant_tx(cards.tenant) as s:
        assert rt.keys.shred(s, cards.tenant, VAULT_OWNER_KIND, dep) == 2
    assert _caller_number(rt, cards.tenant, call) == CALLER_NUMBER.encode()
    with pytest.raises(DecryptionError), rt.db.tenant_tx(cards.tenant) as s:
        vault.detokenize_to_connector(s, cards.grant(0), token.id, processor.connector())
    assert processor.seen == []
    last = _payment_entries(rt, cards.tenant)[-1]
    assert (last["action"], last["outcome"], last["detail"]["error"]) == (
        "payments.detokenize.result",
        "failure",
        "DecryptionError",
    )
    with rt.db.tenant_tx(cards.tenant) as s:
        vault.detokenize_to_connector(s, cards.grant(1), elsewhere.id, processor.connector())
    assert json.loads(processor.seen[0].body)["token"] == elsewhere.id


# -- the gate --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action", [Action.CALL_APPEND, Action.CALL_CREATE], ids=["call-append", "call-create"]
)
def test_grant_for_another_action_is_refused_and_nothing_is_sent(
    rt: Runtime, vault: TokenVault, cards: Cards, processor: Processor, action: Action
) -> None:
    token = _tokenize(rt, vault, cards)
    grant = cards.grant(0, action)
    assert grant.action is action
    with pytest.raises(PermissionDeniedError), rt.db.tenant_tx(cards.tenant) as s:
        vault.detokenize_to_connector(s, grant, token.id, processor.connector())
    assert processor.seen == []
    assert [e["action"] for e in _payment_entries(rt, cards.tenant)] == ["payments.tokenize"]


def test_grant_for_a_content_read_is_refused(
    rt: Runtime, vault: TokenVault, cards: Cards, processor: Processor
) -> None:
    token = _tokenize(rt, vault, cards)
    officer = Principal(
        id=cards.world.a.principals[("compliance_officer", "tenant")],
        tenant_id=cards.tenant,
        kind="user",
        active=True,
        bindings=frozenset({Binding(Role.COMPLIANCE_OFFICER, ScopeKind.TENANT, cards.tenant)}),
    )
    grant = rt.gate.enforce(officer, Action.TRANSCRIPT_READ, cards.resource(0))
    with pytest.raises(PermissionDeniedError), rt.db.tenant_tx(cards.tenant) as s:
        vault.detokenize_to_connector(s, grant, token.id, processor.connector())
    assert processor.seen == []


def test_grant_for_another_call_or_tenant_does_not_reach_the_card(
    rt: Runtime, vault: TokenVault, cards: Cards, processor: Processor, world: World
) -> None:
    token = _tokenize(rt, vault, cards)
    with pytest.raises(PermissionDeniedError), rt.db.tenant_tx(cards.tenant) as s:
        vault.detokenize_to_connector(s, cards.grant(1), token.id, processor.connector())
    # A token of tenant B is not found through a grant of tenant A.
    b_dep, b_call = world.b.deployments[0], world.b.calls[0]
    with rt.db.tenant_tx(world.b.id) as s:
        b_token = vault.tokenize(s, world.b.id, b_dep, b_call, PAN, source="dtmf")
    with pytest.raises(NotFoundError), rt.db.tenant_tx(cards.tenant) as s:
        vault.detokenize_to_connector(s, cards.grant(0), b_token.id, processor.connector())
    assert processor.seen == []


def test_grant_on_a_resource_naming_other_scopes_for_the_call_is_refused(
    rt: Runtime, vault: TokenVault, cards: Cards, processor: Processor
) -> None:
    # Call 0 lives in deployment 0; a resource that places it in deployment 1 (where
    # the operator is bound) passes Cedar, but the vault checks the call's real scopes.
    token = _tokenize(rt, vault, cards)
    dep1, agent1, _call1 = cards.call(1)
    misplaced = Resource.call(cards.tenant, dep1, agent1, token.call_id)
    grant = rt.gate.enforce(cards.operator(1), Action.PAYMENTS_DETOKENIZE, misplaced)
    with pytest.raises(PermissionDeniedError), rt.db.tenant_tx(cards.tenant) as s:
        vault.detokenize_to_connector(s, grant, token.id, processor.connector())
    assert processor.seen == []


def test_no_default_role_may_detokenize(rt: Runtime, world: World) -> None:
    """Only payment_operator (bound deliberately) has payments:detokenize."""
    a = world.a
    resource = Resource.call(a.id, a.deployments[0], a.agents[0], a.calls[0])
    assert [r for r in Role if Action.PAYMENTS_DETOKENIZE in ROLE_ACTIONS[r]] == [
        Role.PAYMENT_OPERATOR
    ]
    for role in (r for r in Role if r is not Role.PAYMENT_OPERATOR):
        principal = Principal(
            id=a.principals[(role.value, "tenant")],
            tenant_id=a.id,
            kind="user",
            active=True,
            bindings=frozenset({Binding(role, ScopeKind.TENANT, a.id)}),
        )
        with pytest.raises((PermissionDeniedError, NotFoundError)):
            rt.gate.enforce(principal, Action.PAYMENTS_DETOKENIZE, resource)


# -- fail closed on the audit log ----------------------------------------------------


def test_audit_failure_means_nothing_is_opened_or_sent(
    rt: Runtime,
    vault: TokenVault,
    cards: Cards,
    processor: Processor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = _tokenize(rt, vault, cards)
    grant = cards.grant(0)
    cvv = EphemeralCvv("123")

    def refuse(*_args: object, **_kwargs: object) -> list[int]:
        raise AuditUnavailableError("audit log is not writable")

    unwrapped: list[str] = []
    data_key = rt.keys.data_key

    def spy(session: Any, owner: KeyOwner, *, create: bool) -> bytes:
        unwrapped.append(owner.purpose)
        return data_key(session, owner, create=create)

    monkeypatch.setattr(rt.audit, "append", refuse)
    monkeypatch.setattr(rt.keys, "data_key", spy)
    with pytest.raises(AuditUnavailableError), rt.db.tenant_tx(cards.tenant) as s:
        vault.detokenize_to_connector(s, grant, token.id, processor.connector(), cvv=cvv)
    assert processor.seen == []
    assert PAN_PURPOSE not in unwrapped  # the card was not even opened
    assert cvv.available  # nor the code spent
