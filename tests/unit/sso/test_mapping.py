"""Group/claim → role mapping: a pure function, checked when the configuration is written."""

from __future__ import annotations

import pytest

from callvault.access import Binding, Role, ScopeKind
from callvault.errors import SsoConfigError
from callvault.sso import SsoIdentity, map_identity, parse_policy

T = "ten_" + "a" * 26
DEP = "dep_" + "b" * 26
AGT = "agt_" + "c" * 26


def ident(groups: tuple[str, ...] = (), **attributes: tuple[str, ...]) -> SsoIdentity:
    return SsoIdentity(
        protocol="oidc",
        tenant_id=T,
        connection_id="sso_" + "d" * 26,
        subject="s-1",
        groups=groups,
        attributes=dict(attributes),
    )


RULES = [
    {"group": "cv-admins", "role": "admin"},
    {"group": "cv-qa", "role": "qa_reviewer", "scope_kind": "deployment", "scope_id": DEP},
    {"group": "cv-dev", "role": "developer", "scope_kind": "agent", "scope_id": AGT},
    {"claim": "department", "value": "audit", "role": "auditor"},
]


def test_several_groups_give_several_bindings_at_their_scopes() -> None:
    policy = parse_policy(RULES, None, tenant_id=T, allow_owner=False)
    got = map_identity(policy, ident(("cv-admins", "cv-qa", "cv-dev", "unrelated")))
    assert got == {
        Binding(Role.ADMIN, ScopeKind.TENANT, T),
        Binding(Role.QA_REVIEWER, ScopeKind.DEPLOYMENT, DEP),
        Binding(Role.DEVELOPER, ScopeKind.AGENT, AGT),
    }


def test_a_claim_value_maps_like_a_group() -> None:
    policy = parse_policy(RULES, None, tenant_id=T, allow_owner=False)
    assert map_identity(policy, ident(department=("audit",))) == {
        Binding(Role.AUDITOR, ScopeKind.TENANT, T)
    }
    assert map_identity(policy, ident(department=("finance",))) == frozenset()


def test_group_names_are_compared_exactly() -> None:
    policy = parse_policy(RULES, None, tenant_id=T, allow_owner=False)
    assert map_identity(policy, ident(("CV-ADMINS", "cv-admins "))) == frozenset()


def test_no_match_and_no_default_maps_to_nothing_so_login_is_denied() -> None:
    policy = parse_policy(RULES, None, tenant_id=T, allow_owner=False)
    assert map_identity(policy, ident(("other",))) == frozenset()


def test_default_role_applies_only_when_no_rule_matches() -> None:
    policy = parse_policy(RULES, "qa_reviewer", tenant_id=T, allow_owner=False)
    assert map_identity(policy, ident(("other",))) == {
        Binding(Role.QA_REVIEWER, ScopeKind.TENANT, T)
    }
    assert map_identity(policy, ident(("cv-admins",))) == {Binding(Role.ADMIN, ScopeKind.TENANT, T)}


def test_default_role_can_be_scoped() -> None:
    policy = parse_policy(
        [],
        {"role": "qa_reviewer", "scope_kind": "deployment", "scope_id": DEP},
        tenant_id=T,
        allow_owner=False,
    )
    assert map_identity(policy, ident()) == {Binding(Role.QA_REVIEWER, ScopeKind.DEPLOYMENT, DEP)}
    assert policy.scoped_ids == {(ScopeKind.DEPLOYMENT, DEP)}


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ([{"group": "g", "role": "superuser"}], "role_mappings[0].role"),
        ([{"group": "g", "role": "admin", "scope_kind": "region"}], "role_mappings[0].scope_kind"),
        (
            [{"group": "g", "role": "admin", "scope_kind": "deployment"}],
            "role_mappings[0].scope_id",
        ),
        (
            [{"group": "g", "role": "admin", "scope_id": "ten_" + "z" * 26}],
            "role_mappings[0].scope_id",
        ),
        ([{"role": "admin"}], "role_mappings[0]"),
        ([{"group": "g", "claim": "c", "role": "admin"}], "role_mappings[0]"),
        ([{"group": "g", "value": "v", "role": "admin"}], "role_mappings[0].value"),
        ([{"claim": "c", "role": "admin"}], "role_mappings[0].value"),
        ([{"group": "", "role": "admin"}], "role_mappings[0].group"),
        ([{"group": "g", "role": "admin", "extra": 1}], "role_mappings[0].extra"),
        ([{"group": "ok", "role": "admin"}, "admin"], "role_mappings[1]"),
        ("admin", "role_mappings"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(rules: object, field: str) -> None:
    with pytest.raises(SsoConfigError) as err:
        parse_policy(rules, None, tenant_id=T, allow_owner=False)
    assert err.value.field == field


def test_an_unknown_default_role_is_refused_at_config_time() -> None:
    with pytest.raises(SsoConfigError) as err:
        parse_policy([], "root", tenant_id=T, allow_owner=False)
    assert err.value.field == "default_role.role"


def test_owner_is_not_grantable_by_mapping_unless_the_connection_allows_it() -> None:
    rules = [{"group": "cv-owners", "role": "owner"}]
    with pytest.raises(SsoConfigError) as err:
        parse_policy(rules, None, tenant_id=T, allow_owner=False)
    assert err.value.field == "role_mappings[0].role"
    with pytest.raises(SsoConfigError):
        parse_policy([], "owner", tenant_id=T, allow_owner=False)
    policy = parse_policy(rules, None, tenant_id=T, allow_owner=True)
    assert policy.grants_owner
    assert map_identity(policy, ident(("cv-owners",))) == {Binding(Role.OWNER, ScopeKind.TENANT, T)}


def test_too_many_rules_are_refused() -> None:
    rules = [{"group": f"g{i}", "role": "auditor"} for i in range(201)]
    with pytest.raises(SsoConfigError) as err:
        parse_policy(rules, None, tenant_id=T, allow_owner=False)
    assert err.value.field == "role_mappings"


def test_errors_never_quote_the_group_name() -> None:
    secret_group = "Project Nightingale (restricted)"
    with pytest.raises(SsoConfigError) as err:
        parse_policy(
            [{"group": secret_group, "role": "nope"}], None, tenant_id=T, allow_owner=False
        )
    assert secret_group not in str(err.value)


def test_the_stored_document_parses_back_to_the_same_policy() -> None:
    policy = parse_policy(RULES, "auditor", tenant_id=T, allow_owner=False)
    doc = policy.document()
    again = parse_policy(doc["role_mappings"], doc["default_role"], tenant_id=T, allow_owner=False)
    assert again == policy
