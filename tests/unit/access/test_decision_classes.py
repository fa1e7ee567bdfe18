"""Decision classes (ADR 10): the same answer as asking Cedar about the request itself."""

from __future__ import annotations

from importlib.resources import files

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callvault.access import Action, Binding, Principal, Resource, Role, ScopeKind
from callvault.access._authorize import Authorizer, default_authorizer, role_shape_text

TENANTS = ["ten_" + c * 26 for c in "ab"]
DEPLOYMENTS = {t: [f"dep_{t[4]}{'x' * 22}{i:03d}" for i in range(3)] for t in TENANTS}
AGENTS = {
    d: [f"agt_{d[4]}{'y' * 19}{d[-3:]}{j:03d}" for j in range(2)]
    for ds in DEPLOYMENTS.values()
    for d in ds
}
SCOPES: list[tuple[ScopeKind, str]] = (
    [(ScopeKind.TENANT, t) for t in TENANTS]
    + [(ScopeKind.DEPLOYMENT, d) for ds in DEPLOYMENTS.values() for d in ds]
    + [(ScopeKind.AGENT, a) for ags in AGENTS.values() for a in ags]
)


def _resources() -> list[Resource]:
    out: list[Resource] = []
    for t in TENANTS:
        out.append(Resource.tenant(t))
        for d in DEPLOYMENTS[t]:
            out.append(Resource.deployment(t, d))
            for a in AGENTS[d]:
                out.append(Resource.agent(t, d, a))
                out.append(Resource.call(t, d, a, f"call_{a[4:]}"))
    return out


RESOURCES = _resources()

principals = st.builds(
    lambda tenant, active, bindings: Principal(
        "prn_" + "p" * 26, tenant, "user", active=active, bindings=frozenset(bindings)
    ),
    st.sampled_from(TENANTS),
    st.booleans(),
    st.lists(
        st.builds(
            lambda role, scope: Binding(role, scope[0], scope[1]),
            st.sampled_from(list(Role)),
            st.sampled_from(SCOPES),
        ),
        max_size=8,
    ),
)


def test_the_shipped_policy_set_has_the_class_shape() -> None:
    assert default_authorizer().classes
    shipped = (files("callvault.access") / "policies.cedar").read_text(encoding="utf-8")
    assert Authorizer(shipped).classes
    assert Authorizer(role_shape_text()).classes


@settings(max_examples=300, deadline=None)
@given(
    principal=principals,
    action=st.sampled_from(list(Action)),
    resource=st.sampled_from(RESOURCES),
)
def test_class_decisions_equal_full_evaluation(
    principal: Principal, action: Action, resource: Resource
) -> None:
    authorizer = default_authorizer()
    assert authorizer.decide_by_class(principal, action, resource) == authorizer.evaluate(
        principal, action, resource
    )


def test_every_role_action_and_scope_agrees_exhaustively() -> None:
    authorizer = default_authorizer()
    for role in Role:
        for kind, scope in SCOPES:
            p = Principal("prn_" + "q" * 26, TENANTS[0], "user", active=True,
                          bindings=frozenset({Binding(role, kind, scope)}))  # fmt: skip
            for action in Action:
                for resource in RESOURCES:
                    assert authorizer.decide_by_class(p, action, resource) == authorizer.evaluate(
                        p, action, resource
                    )


@pytest.mark.parametrize(
    "extra",
    [
        # A policy that reads something else (the resource itself) breaks the class argument.
        '@id("extra")\npermit (principal, action, resource == Agent::"agt_x");',
        # So does a changed condition on an existing role.
        None,
    ],
)
def test_any_other_policy_set_turns_classes_off(extra: str | None) -> None:
    text = role_shape_text()
    if extra is None:
        text = text.replace(
            "principal.bindings.owner.containsAny(context.scopes)",
            "principal.bindings.owner.contains(context.tenant)",
        )
    else:
        text = text + "\n\n" + extra
    authorizer = Authorizer(text)
    assert not authorizer.classes
    # ... and requests still get Cedar's own answer on the real input.
    p = Principal("prn_" + "r" * 26, TENANTS[0], "user", active=True)
    assert authorizer.authorize(p, next(iter(Action)), RESOURCES[0]) == authorizer.evaluate(
        p, next(iter(Action)), RESOURCES[0]
    )
