"""The pure cores of SCIM group revocation: who left which names, and which bindings go."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from callvault.access import Binding, Role, ScopeKind
from callvault.scim._groups import GroupChange
from callvault.scim._left import groups_left
from callvault.scim._store import GroupRecord
from callvault.sso import parse_policy, revocable

T = "ten_" + "t" * 26
NOW = datetime(2026, 11, 29, tzinfo=UTC)
ADMIN = Binding(Role.ADMIN, ScopeKind.TENANT, T)
AUDITOR = Binding(Role.AUDITOR, ScopeKind.TENANT, T)
POLICY = parse_policy(
    [
        {"group": "admins", "role": "admin"},
        {"group": "leads", "role": "admin"},
        {"group": "audit", "role": "auditor"},
        {"claim": "dept", "value": "x", "role": "auditor"},
    ],
    None,
    tenant_id=T,
    allow_owner=False,
)


def _group(name: str, members: list[str], external_id: str | None = None) -> GroupRecord:
    return GroupRecord("grp_" + "g" * 26, name, external_id, NOW, NOW, list(members))


def test_a_removed_member_left_both_names_of_the_group() -> None:
    old = _group("admins", ["p1", "p2"], "obj-1")
    change = GroupChange(_group("admins", ["p2"], "obj-1"), ("members",), (), ("p1",), old)
    assert groups_left(change) == {"p1": frozenset({"admins", "obj-1"})}


def test_a_rename_is_leaving_the_old_name_for_every_member() -> None:
    old = _group("admins", ["p1", "p2"], "obj-1")
    change = GroupChange(
        _group("admins-old", ["p1", "p2"], "obj-1"), ("displayName",), previous=old
    )
    assert groups_left(change) == {"p1": frozenset({"admins"}), "p2": frozenset({"admins"})}


def test_a_deletion_is_leaving_for_every_member_and_a_new_group_for_nobody() -> None:
    old = _group("admins", ["p1"])
    assert groups_left(GroupChange(old, ("deleted",), (), ("p1",), old, deleted=True)) == {
        "p1": frozenset({"admins"})
    }
    assert groups_left(GroupChange(old, ("displayName", "members"), ("p1",))) == {}


def test_only_group_granted_bindings_not_still_given_are_revocable() -> None:
    held = [("rb1", ADMIN), ("rb2", AUDITOR)]
    assert revocable(POLICY, held, left=frozenset({"admins"}), kept=frozenset()) == ["rb1"]
    assert revocable(POLICY, held, left=frozenset({"admins"}), kept=frozenset({"leads"})) == []
    assert revocable(POLICY, held, left=frozenset({"payroll"}), kept=frozenset()) == []
    # A name left and still held through another SCIM group is not left.
    assert revocable(POLICY, held, left=frozenset({"audit"}), kept=frozenset({"audit"})) == []


NAMES = st.frozensets(st.sampled_from(["admins", "leads", "audit", "other"]))


@given(left=NAMES, kept=NAMES)
def test_never_revokes_what_a_kept_group_grants_or_what_no_left_group_grants(
    left: frozenset[str], kept: frozenset[str]
) -> None:
    held = [("rb1", ADMIN), ("rb2", AUDITOR)]
    gone = dict(held)
    for bid in revocable(POLICY, held, left=left, kept=kept):
        b = gone[bid]
        assert not any(r.group in kept and r.binding == b for r in POLICY.rules)
        assert any(r.group in left - kept and r.binding == b for r in POLICY.rules)
