"""Cedar decisions: the tenant wall, scope containment, deactivation, and the principal cache."""

from __future__ import annotations

import pytest

from callvault.access import (
    Action,
    Authorizer,
    Binding,
    Principal,
    Resource,
    Role,
    ScopeKind,
    authorize,
    default_authorizer,
)
from callvault.access._authorize import _Memo, policy_schema
from callvault.errors import ConfigError

T = "ten_" + "a" * 26
OTHER = "ten_" + "b" * 26
D0 = "dep_" + "c" * 26
D1 = "dep_" + "d" * 26
A0 = "agt_" + "e" * 26
A1 = "agt_" + "f" * 26
CALL0 = "call_" + "g" * 26
CALL1 = "call_" + "h" * 26


def who(*bindings: tuple[Role, ScopeKind, str], tenant: str = T, active: bool = True) -> Principal:
    return Principal(
        id="prn_" + "p" * 26,
        tenant_id=tenant,
        kind="user",
        active=active,
        bindings=frozenset(Binding(r, k, s) for r, k, s in bindings),
    )


def call(dep: str = D0, agent: str = A0, call_id: str = CALL0, tenant: str = T) -> Resource:
    return Resource.call(tenant, dep, agent, call_id)


def test_qa_reviewer_reads_redacted_transcripts_of_its_deployment_only() -> None:
    qa = who((Role.QA_REVIEWER, ScopeKind.DEPLOYMENT, D0))
    assert authorize(qa, Action.TRANSCRIPT_READ_REDACTED, call()).allowed
    assert not authorize(qa, Action.TRANSCRIPT_READ, call()).allowed
    assert not authorize(qa, Action.TRANSCRIPT_READ_REDACTED, call(D1, A1, CALL1)).allowed


def test_tenant_scope_binding_covers_every_deployment_agent_and_call() -> None:
    officer = who((Role.COMPLIANCE_OFFICER, ScopeKind.TENANT, T))
    for res in (call(), call(D1, A1, CALL1)):
        assert authorize(officer, Action.TRANSCRIPT_READ, res).allowed
    assert authorize(officer, Action.DEPLOYMENT_READ, Resource.deployment(T, D1)).allowed


def test_agent_scope_binding_does_not_reach_up_to_its_deployment() -> None:
    dev = who((Role.DEVELOPER, ScopeKind.AGENT, A0))
    assert authorize(dev, Action.AGENT_READ_CONFIG, Resource.agent(T, D0, A0)).allowed
    assert not authorize(dev, Action.DEPLOYMENT_READ, Resource.deployment(T, D0)).allowed
    assert not authorize(dev, Action.AGENT_CREATE, Resource.deployment(T, D0)).allowed


def test_tenant_wall_denies_even_with_a_binding_naming_the_other_tenants_scope() -> None:
    # A binding that (wrongly) names another tenant's deployment must not open it.
    rogue = who((Role.OWNER, ScopeKind.DEPLOYMENT, D0), (Role.OWNER, ScopeKind.TENANT, OTHER))
    decision = authorize(rogue, Action.DEPLOYMENT_READ, Resource.deployment(OTHER, D0))
    assert not decision.allowed
    assert "tenant-wall" in decision.reasons


def test_deactivated_principal_is_denied_everything() -> None:
    owner = who((Role.OWNER, ScopeKind.TENANT, T), active=False)
    decision = authorize(owner, Action.TENANT_READ, Resource.tenant(T))
    assert not decision.allowed
    assert "inactive" in decision.reasons


def test_no_role_grants_call_content_to_owner_or_admin() -> None:
    for role in (Role.OWNER, Role.ADMIN, Role.DEVELOPER, Role.AUDITOR, Role.INGEST):
        p = who((role, ScopeKind.TENANT, T))
        assert not authorize(p, Action.TRANSCRIPT_READ, call()).allowed, role
        assert not authorize(p, Action.RECORDING_READ, call()).allowed, role


def test_only_owner_may_grant_owner() -> None:
    assert authorize(
        who((Role.OWNER, ScopeKind.TENANT, T)), Action.PRINCIPAL_GRANT_OWNER, Resource.tenant(T)
    ).allowed
    assert not authorize(
        who((Role.ADMIN, ScopeKind.TENANT, T)), Action.PRINCIPAL_GRANT_OWNER, Resource.tenant(T)
    ).allowed


def test_allow_names_the_permitting_role_policy() -> None:
    d = authorize(who((Role.AUDITOR, ScopeKind.TENANT, T)), Action.AUDIT_READ, Resource.tenant(T))
    assert d.allowed
    assert d.reasons == ("role-auditor",)


def test_changed_bindings_are_not_served_from_the_cache() -> None:
    before = who((Role.QA_REVIEWER, ScopeKind.DEPLOYMENT, D0))
    assert authorize(before, Action.TRANSCRIPT_READ_REDACTED, call()).allowed
    revoked = who()  # same principal id, binding removed
    assert not authorize(revoked, Action.TRANSCRIPT_READ_REDACTED, call()).allowed
    moved = who((Role.QA_REVIEWER, ScopeKind.DEPLOYMENT, D1))
    assert not authorize(moved, Action.TRANSCRIPT_READ_REDACTED, call()).allowed


def test_policy_that_references_an_unknown_attribute_stops_startup() -> None:
    bad = "permit (principal, action, resource) when { principal.superuser };"
    with pytest.raises(ConfigError, match="invalid"):
        Authorizer(bad)


def test_policy_that_does_not_parse_stops_startup() -> None:
    with pytest.raises(ConfigError):
        Authorizer("permit (principal, action")


def test_schema_lists_every_action_under_the_roles_that_grant_it() -> None:
    actions = policy_schema()[""]["actions"]
    parents = {g["id"] for g in actions[Action.TRANSCRIPT_READ.value]["memberOf"]}
    assert parents == {"role:compliance_officer"}


def test_memo_stays_bounded_and_drops_the_oldest_entries() -> None:
    memo: _Memo[int, str] = _Memo(8)
    for i in range(9):
        memo.put(i, str(i))
    assert memo.get(0) is None
    assert memo.get(8) == "8"
    assert sum(memo.get(i) is not None for i in range(9)) <= 8


def test_memoised_decision_equals_a_fresh_cedar_evaluation() -> None:
    az = default_authorizer()
    qa = who((Role.QA_REVIEWER, ScopeKind.DEPLOYMENT, D0))
    for action in Action:
        for res in (call(), call(D1, A1, CALL1), Resource.deployment(T, D0), Resource.tenant(T)):
            first = az.authorize(qa, action, res)
            assert az.authorize(qa, action, res) == first == az.evaluate(qa, action, res)
