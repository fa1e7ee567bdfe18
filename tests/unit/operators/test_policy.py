"""The operator policy and the principal a grant lends, decided by the tenant's Cedar gate."""

from __future__ import annotations

from datetime import timedelta

import pytest

from callvault.access import Action, Resource, authorize
from callvault.operators import (
    ActiveGrant,
    Operator,
    OperatorAction,
    OperatorRole,
    break_glass_principal,
    decide,
)
from callvault.store.models import utcnow

T, OTHER = "ten_" + "a" * 26, "ten_" + "b" * 26
D0, D1 = "dep_" + "a" * 26, "dep_" + "b" * 26
A0, A1 = "agt_" + "a" * 26, "agt_" + "b" * 26
CALL0, CALL1 = "call_" + "a" * 26, "call_" + "b" * 26
ENGINEER = Operator("opr_" + "e" * 26, OperatorRole.SUPPORT_ENGINEER, "opk_" + "e" * 26)
READONLY = Operator("opr_" + "r" * 26, OperatorRole.SUPPORT_READONLY, "opk_" + "r" * 26)
METADATA = [
    OperatorAction.TENANT_READ,
    OperatorAction.DEPLOYMENT_READ,
    OperatorAction.AGENT_READ,
    OperatorAction.CALL_LIST,
    OperatorAction.CALL_READ,
]
CONTENT = [OperatorAction.TRANSCRIPT_READ_REDACTED, OperatorAction.RECORDING_READ_MASKED]
FULL = [OperatorAction.TRANSCRIPT_READ, OperatorAction.RECORDING_READ]


NOW = utcnow()


def _grant(
    op: Operator = ENGINEER, *, tenant: str = T, dep: str = D0, left: int = 60
) -> ActiveGrant:
    return ActiveGrant(
        id="bgr_" + "g" * 26,
        tenant_id=tenant,
        deployment_id=dep,
        operator_id=op.id,
        expires_at=NOW + timedelta(minutes=left),
    )


@pytest.mark.parametrize("op", [ENGINEER, READONLY])
@pytest.mark.parametrize("action", METADATA)
def test_every_operator_role_reads_metadata(op: Operator, action: OperatorAction) -> None:
    d = decide(op, action, tenant_id=T)
    assert d.allowed
    assert d.reason == f"operator-role-{op.role.value}"


@pytest.mark.parametrize("action", CONTENT + FULL)
def test_support_readonly_never_reads_content_even_with_a_grant(action: OperatorAction) -> None:
    grant = _grant(READONLY)
    d = decide(READONLY, action, tenant_id=T, deployment_id=D0, grant=grant, now=utcnow())
    assert not d.allowed
    assert d.reason == "role"


@pytest.mark.parametrize("action", CONTENT)
def test_engineer_reads_least_content_only_under_a_matching_live_grant(
    action: OperatorAction,
) -> None:
    now = NOW
    ok = decide(ENGINEER, action, tenant_id=T, deployment_id=D0, grant=_grant(), now=now)
    assert ok.allowed
    assert ok.grant_id == _grant().id
    for kwargs in (
        {"grant": None},
        {"grant": _grant(dep=D1)},
        {"grant": _grant(tenant=OTHER)},
        {"grant": _grant(READONLY)},
        {"grant": _grant(left=0)},
        {"grant": _grant(left=-1)},
        {"deployment_id": D1},
        {"now": None},
    ):
        args = {"deployment_id": D0, "grant": _grant(), "now": now, **kwargs}
        d = decide(ENGINEER, action, tenant_id=T, **args)  # type: ignore[arg-type]
        assert not d.allowed, kwargs
        assert d.reason == "no-break-glass"


@pytest.mark.parametrize("action", FULL)
def test_no_operator_role_has_full_views(action: OperatorAction) -> None:
    d = decide(ENGINEER, action, tenant_id=T, deployment_id=D0, grant=_grant(), now=utcnow())
    assert not d.allowed


def test_only_engineers_ask_for_break_glass() -> None:
    assert decide(ENGINEER, OperatorAction.BREAK_GLASS_REQUEST, tenant_id=T).allowed
    assert not decide(READONLY, OperatorAction.BREAK_GLASS_REQUEST, tenant_id=T).allowed


def test_the_lent_principal_is_a_reviewer_of_one_deployment_in_the_gate() -> None:
    p = break_glass_principal(ENGINEER, _grant())
    assert p.realm == "operator"
    assert p.break_glass_id == _grant().id
    assert p.tenant_id == T
    assert p.key_id == ENGINEER.key_id
    own = Resource.call(T, D0, A0, CALL0)
    assert authorize(p, Action.TRANSCRIPT_READ_REDACTED, own).allowed
    assert authorize(p, Action.RECORDING_READ_MASKED, own).allowed
    refused = [
        (Action.TRANSCRIPT_READ, own),
        (Action.RECORDING_READ, own),
        (Action.PAYMENTS_DETOKENIZE, own),
        (Action.AGENT_READ_CONFIG, Resource.agent(T, D0, A0)),
        (Action.CONFIG_READ, Resource.deployment(T, D0)),
        (Action.AUDIT_READ, Resource.tenant(T)),
        (Action.TRANSCRIPT_READ_REDACTED, Resource.call(T, D1, A1, CALL1)),
        (Action.TRANSCRIPT_READ_REDACTED, Resource.call(OTHER, D0, A0, CALL0)),
        (Action.BREAK_GLASS_APPROVE, Resource.tenant(T)),
    ]
    for action, res in refused:
        assert not authorize(p, action, res).allowed, (action, res)


def test_a_grant_lends_nothing_to_another_operator() -> None:
    with pytest.raises(ValueError, match="another operator"):
        break_glass_principal(READONLY, _grant(ENGINEER))
