"""Fuzzing the SCIM endpoint: malformed filters, PATCH paths and bodies get a clear 4xx.

Every request goes straight to :meth:`ScimService.handle` (no HTTP) against one
module-scoped tenant holding three users, a group of two of them, and a deleted
user. Each test draws requests from a grammar that mixes valid SCIM with junk
(operators, brackets, quotes, URNs, unicode, lone surrogates, hostile sizes)
and pins the rule of the issue:

- the answer is a success of the request's kind, or a 4xx SCIM Error message
  (``schemas`` the Error URN, ``status`` a string, a ``scimType`` on 400/409);
  never a 5xx and never an exception out of ``handle``;
- a refused request changed nothing: the resource (GET before and after), the
  row count of every table, the rows of every table SCIM writes, and the
  tenant's audit log are as they were (a list or search writes nothing either);
- a request that succeeded but changed nothing writes nothing (no audit entry
  either), and one that changed something writes at least one audit entry;
- no error body quotes what was sent: generated strings carry the marker
  :data:`MARK`, which no error body may contain.

Strings may hold placeholders (``@U0@``...) filled with the fixture's ids at
request time, so valid member references and id filters are drawn too.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from callvault.bootstrap import create_tenant_with_owner
from callvault.config import load_settings
from callvault.runtime import Runtime
from callvault.scim import ScimRequest, ScimResponse, ScimService, issue_scim_token
from callvault.sso import ScimGroupRevoker
from callvault.store.models import Base
from tests.unit.api._harness import audit_size

USER: Final = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP: Final = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE: Final = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP: Final = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH: Final = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
LIST: Final = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR: Final = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_TYPES: Final = frozenset(
    {
        "invalidFilter",
        "tooMany",
        "uniqueness",
        "mutability",
        "invalidSyntax",
        "invalidPath",
        "noTarget",
        "invalidValue",
        "invalidVers",
        "sensitive",
    }
)

#: The tables a SCIM request writes, whose rows a refused request MUST leave as they were.
WRITTEN: Final = frozenset(
    {
        "principals",
        "api_keys",
        "role_bindings",
        "scim_users",
        "scim_groups",
        "scim_group_members",
        "data_keys",
    }
)

#: Carried by generated strings; an error body holding it quoted what was sent.
MARK: Final = "ZQXJ"

#: Fast and deterministic: the same examples on every run, nothing written to disk.
FUZZ: Final = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


def fuzz(examples: int) -> settings:
    return settings(FUZZ, max_examples=examples)


# -- the tenant under test ---------------------------------------------------------------


@dataclass
class Rig:
    rt: Runtime
    service: ScimService
    tenant_id: str
    token: str
    users: list[str]
    group: str
    deleted: str

    @property
    def base(self) -> str:
        return f"https://testserver/scim/v2/{self.tenant_id}"

    def fill(self, text: str) -> str:
        """``text`` with every placeholder replaced by the fixture's ids."""
        for name, real in self.placeholders().items():
            text = text.replace(name, real)
        return text

    def placeholders(self) -> dict[str, str]:
        found = {f"@U{i}@": user for i, user in enumerate(self.users)}
        return {**found, "@G@": self.group, "@DEL@": self.deleted, "@NOPE@": "prn_" + "a" * 26}

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Sequence[tuple[str, str]] = (),
    ) -> ScimResponse:
        """One request through ``handle``; ``body`` is JSON unless it is already bytes."""
        if isinstance(body, bytes):
            raw = body
        elif body is None:
            raw = b""
        else:
            # ensure_ascii keeps lone surrogates as \\ud800 escapes, as a client may send them
            raw = self.fill(json.dumps(body)).encode("utf-8")  # placeholders need no escaping
        req = ScimRequest(
            method=method,
            tenant=self.tenant_id,
            path=self.fill(path),
            query=[(self.fill(k), self.fill(v)) for k, v in query],
            body=raw,
            authorization=f"Bearer {self.token}",
            base_url=self.base,
            request_id="req_fuzz",
        )
        return self.service.handle(req)

    def resource(self, path: str) -> dict[str, Any]:
        r = self.call("GET", path)
        assert r.status == 200, r.body
        return _json(r)

    def state(self) -> tuple[dict[str, int], dict[str, str], int]:
        """What a request may write: the row count of every table, the content of the
        tables SCIM writes (principals, keys, bindings, users, groups, members, data keys),
        and the tenant's audit log size."""
        tables = Base.metadata.sorted_tables
        counts = select(
            *(select(func.count()).select_from(t).scalar_subquery().label(t.name) for t in tables)
        )
        with self.rt.db.system_tx() as s:
            rows = dict(zip([t.name for t in tables], s.execute(counts).one(), strict=True))
            content = {
                t.name: hashlib.sha256(
                    repr(sorted(map(tuple, s.execute(select(t)).all()), key=repr)).encode()
                ).hexdigest()
                for t in tables
                if t.name in WRITTEN
            }
        return rows, content, audit_size(self.rt, self.tenant_id)


def _json(r: ScimResponse) -> dict[str, Any]:
    assert r.body is not None
    doc = json.loads(r.body)
    assert isinstance(doc, dict), doc
    return doc


def _create(rig: Rig, path: str, doc: dict[str, Any]) -> str:
    r = rig.call("POST", path, doc)
    assert r.status == 201, r.body
    return str(_json(r)["id"])


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    data_dir: Path = tmp_path_factory.mktemp("scim-fuzz") / "data"
    rt = Runtime.open(load_settings({}, data_dir=data_dir), create_key=True)
    try:
        init = create_tenant_with_owner(rt, tenant_name="fuzz", owner_name="fuzz-owner")
        with rt.db.tenant_tx(init.tenant_id) as s:
            token = issue_scim_token(
                s, init.tenant_id, label="fuzz", ttl=timedelta(days=1), created_by=init.principal_id
            ).token
        service = ScimService(
            rt.db, rt.keys, rt.sealer, rt.audit, groups_left=ScimGroupRevoker(rt.keys, rt.sealer)
        )
        rig = Rig(rt, service, init.tenant_id, token, [], "", "")
        for name, extra in [
            ("ada@example.com", {"displayName": "Ada", "externalId": "ext-ada"}),
            ("bob@example.com", {"displayName": "Bob", "active": False}),
            ("cy@example.com", {}),
        ]:
            rig.users.append(_create(rig, "Users", {"schemas": [USER], "userName": name, **extra}))
        rig.deleted = _create(rig, "Users", {"schemas": [USER], "userName": "gone@example.com"})
        assert rig.call("DELETE", f"Users/{rig.deleted}").status == 204
        rig.group = _create(
            rig,
            "Groups",
            {
                "schemas": [GROUP],
                "displayName": "Engineering",
                "externalId": "ext-eng",
                "members": [{"value": rig.users[0]}, {"value": rig.users[1]}],
            },
        )
        yield rig
    finally:
        rt.close()


# -- checks ------------------------------------------------------------------------------


def assert_scim_error(r: ScimResponse) -> dict[str, Any]:
    """``r`` is a 4xx SCIM Error message (RFC 7644 §3.12) that quotes nothing sent."""
    assert 400 <= r.status < 500, (r.status, r.body)
    assert r.media_type == "application/scim+json"
    doc = _json(r)
    assert doc["schemas"] == [ERROR], doc
    assert doc["status"] == str(r.status), doc
    assert isinstance(doc.get("detail"), str), doc
    assert set(doc) <= {"schemas", "status", "scimType", "detail"}, doc
    if r.status in {400, 409}:
        assert doc.get("scimType") in SCIM_TYPES, doc
    if r.status == 409:
        assert doc["scimType"] == "uniqueness", doc
    assert r.body is not None
    assert MARK.casefold() not in r.body.decode("utf-8").casefold(), doc
    return doc


def assert_list_response(r: ScimResponse) -> None:
    doc = _json(r)
    assert doc["schemas"] == [LIST], doc
    assert isinstance(doc["totalResults"], int), doc
    assert doc["totalResults"] >= 0
    assert isinstance(doc["Resources"], list), doc
    assert doc["itemsPerPage"] == len(doc["Resources"]), doc
    assert len(doc["Resources"]) <= doc["totalResults"]
    for resource in doc["Resources"]:
        assert resource["schemas"][0] in {USER, GROUP}, resource


def answer(r: ScimResponse, ok: int) -> bool:
    """True when ``r`` is the success ``ok``; else it MUST be a 4xx SCIM Error."""
    assert r.status < 500, (r.status, r.body)
    if r.status == ok:
        event(str(ok))
        return True
    event(f"{r.status} {assert_scim_error(r).get('scimType')}")
    return False


def writable(doc: dict[str, Any]) -> dict[str, Any]:
    """A PUT body that puts a resource back as ``doc`` (a GET of it) shows it."""
    schema = doc["schemas"][0]
    keys = {
        USER: ["userName", "displayName", "externalId", "active"],
        GROUP: ["displayName", "externalId"],
    }[schema]
    out: dict[str, Any] = {"schemas": [schema]}
    out.update({k: doc[k] for k in keys if k in doc})
    if schema == GROUP:
        out["members"] = [{"value": m["value"]} for m in doc.get("members", [])]
    return out


def canon(doc: dict[str, Any], *, times: bool = True) -> dict[str, Any]:
    """``doc`` with its members in one order (a multi-valued attribute has none)."""
    out = {**doc}
    if "members" in doc:
        out["members"] = sorted(doc["members"], key=lambda m: str(m.get("value")))
    if not times:
        out["meta"] = {k: v for k, v in doc["meta"].items() if k != "lastModified"}
    return out


def change_is_atomic_and_audited(rig: Rig, method: str, path: str, body: Any) -> None:
    """PATCH/PUT ``body`` at ``path``: 200 with the resource or a 4xx that changed nothing.

    A success is undone with a PUT of the resource as it was, so every example
    starts from the fixture's state.
    """
    before = rig.resource(path)
    state = rig.state()
    r = rig.call(method, path, body)
    if answer(r, 200):
        shown = _json(r)
        assert shown["id"] == before["id"], shown
        assert shown["schemas"] == before["schemas"], shown
        after = rig.resource(path)
        assert canon(after, times=False) == canon(shown, times=False)
        if canon(after) == canon(before):
            assert rig.state() == state, "a request that changed nothing wrote something"
        else:
            assert audit_size(rig.rt, rig.tenant_id) > state[2], "a change was not audited"
            undo = rig.call("PUT", path, writable(before))
            assert undo.status == 200, undo.body
            assert canon(rig.resource(path), times=False) == canon(before, times=False)
    else:
        assert rig.resource(path) == before, "a refused request changed the resource"
        assert rig.state() == state, "a refused request wrote rows or audit entries"


def read_only(
    rig: Rig, method: str, path: str, body: Any, query: Sequence[tuple[str, str]]
) -> None:
    """A list or search: a 200 ListResponse or a 4xx SCIM Error, and nothing written."""
    state = rig.state()
    r = rig.call(method, path, body, query)
    if answer(r, 200):
        assert_list_response(r)
    assert rig.state() == state, "a read wrote rows or audit entries"


def created_or_refused(rig: Rig, path: str, body: Any) -> None:
    """POST ``body`` to ``path``: 201 with the resource (then deleted) or a 4xx writing nothing."""
    state = rig.state()
    r = rig.call("POST", path, body)
    if answer(r, 201):
        made = _json(r)
        kind = USER if path == "Users" else GROUP
        assert made["schemas"][0] == kind, made
        assert canon(made) == canon(rig.resource(f"{path}/{made['id']}"))
        assert audit_size(rig.rt, rig.tenant_id) > state[2], "a creation was not audited"
        assert rig.call("DELETE", f"{path}/{made['id']}").status == 204
    else:
        assert rig.state() == state, "a refused creation wrote rows or audit entries"


# -- strategies --------------------------------------------------------------------------
#
# Each request is drawn mostly valid, then maybe broken in one place, so that
# both the parsers and the code behind them (patching, uniqueness, members,
# the audit entry) see what the grammar produces.

_SPECIAL = [
    "\ud800",  # a lone surrogate: valid as a JSON escape, not encodable as UTF-8
    "\udfff",
    "\x00",
    "\u202e",
    "\ufeff",
    "\u0130",  # İ: lowercases to two code points
    "\ufb00",
    "\U0001f600",
    "\\",
    '"',
    "'",
    "[",
    "]",
    "(",
    ")",
    ".",
    ":",
    " ",
    "\t",
    "\n",
]

marker = st.text(alphabet="abcdefghijklmnop0123456789", min_size=3, max_size=6).map(
    lambda s: MARK + s
)
placeholder = st.sampled_from(["@U0@", "@U1@", "@U2@", "@G@", "@DEL@", "@NOPE@"])
long_text = st.sampled_from([255, 256, 257, 1_000, 20_000, 200_000]).map(
    lambda n: (MARK + "x" * n)[:n]
)
#: Strings a service keeps: not blank, not too long, no lone surrogate.
good_text = st.one_of(
    marker.map(lambda m: f"{m}@example.com"),
    marker,
    st.text(st.characters(exclude_categories=["Cs", "Cc"]), min_size=1, max_size=16).filter(
        str.strip
    ),
    st.sampled_from(
        ["ada@example.com", "ADA@Example.com", "bob@example.com", "Ada", "Engineering", "ext-ada"]
    ),
    st.sampled_from(["\u0130stanbul", "e\u0301", "\u00e9", "x" * 256]),
)
#: Strings built of what parsers and encoders trip on (lone surrogates, NUL, quotes...).
hostile_text = st.one_of(
    st.sampled_from(_SPECIAL[:8]),
    st.tuples(marker, st.sampled_from(_SPECIAL[:3])).map("".join),
    st.lists(st.one_of(st.sampled_from(_SPECIAL), marker, st.text(max_size=3)), max_size=5).map(
        "".join
    ),
)
#: Any string, the hostile ones included.
text_value = st.one_of(
    good_text, hostile_text, hostile_text, placeholder, st.text(max_size=12), long_text
)

json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(),  # NaN and Infinity too: Python's json reads them
    text_value,
)
json_key = st.one_of(
    st.sampled_from(["value", "display", "type", "primary", "$ref", "op", "path", "schemas"]),
    st.sampled_from(["userName", "displayName", "active", "id", "meta", "members", "emails"]),
    marker,
    st.text(max_size=6),
)
json_value = st.recursive(
    json_scalar,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(json_key, children, max_size=3)
    ),
    max_leaves=8,
)
not_an_object = st.one_of(
    st.binary(max_size=40),
    st.sampled_from(
        [
            b"",
            b"null",
            b"[]",
            b"1",
            b'"x"',
            b"\xff\xfe",
            b"{",
            b'{"a":1,}',
            b'{"userName": "\\ud800"}',
            b"[" * 50_000,
            b'{"a":' * 5_000,
        ]
    ),
    st.lists(json_value, max_size=3).map(lambda v: json.dumps(v).encode()),
    json_scalar.map(lambda v: json.dumps(v).encode()),
)

# -- filters and attribute paths

USER_ATTRS: Final = [
    "userName",
    "displayName",
    "externalId",
    "active",
    "id",
    "meta",
    "meta.created",
    "meta.lastModified",
    "meta.resourceType",
    "meta.location",
    "schemas",
    "name",
    "name.givenName",
    "emails",
    "emails.value",
    "emails.type",
    "title",
    "groups",
    "password",
    f"{USER}:userName",
    f"{USER}:displayName",
    f"{USER}:active",
    f"{USER}:name.givenName",
    f"{ENTERPRISE}:employeeNumber",
    f"{ENTERPRISE}:manager",
    f"{ENTERPRISE}:manager.value",
    ENTERPRISE,
]
GROUP_ATTRS: Final = [
    "displayName",
    "externalId",
    "id",
    "members",
    "members.value",
    "members.display",
    "members.type",
    "members.$ref",
    "meta.created",
    f"{GROUP}:displayName",
    f"{GROUP}:members",
    f"{GROUP}:members.value",
]
attr_name = st.one_of(
    st.sampled_from(USER_ATTRS + GROUP_ATTRS),
    st.sampled_from(["", ".", "..", "urn:", "urn:x:y", "a.b.c.d", "$ref", "USERNAME"]),
    st.from_regex(r"[A-Za-z][A-Za-z0-9_$-]{0,10}(\.[A-Za-z]{1,6})?", fullmatch=True),
    marker,
    st.text(max_size=8),
)
VALID_OPS: Final = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]
compare_op = st.sampled_from([*VALID_OPS, "EQ", "Co", "xx", "=", "==", ""])
filter_value = st.one_of(
    text_value.map(json.dumps),  # a well-quoted string
    text_value.map(lambda s: f'"{s}"'),  # quoted without escaping
    text_value,  # unquoted
    st.sampled_from(["true", "false", "null", "TRUE", "1e999", "-0", "NaN"]),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=False).map(repr),
)
blank = st.sampled_from([" ", " ", " ", "  ", "\t", ""])


@st.composite
def comparison(draw: st.DrawFn) -> str:
    """An attribute compared to a value: any attribute name, operator and literal."""
    attr = draw(attr_name)
    if draw(st.integers(0, 5)) == 0:
        return f"{attr}{draw(blank)}pr"
    return f"{attr}{draw(blank)}{draw(compare_op)}{draw(blank)}{draw(filter_value)}"


_TYPED_ATTRS: Final = {
    "userName": "string",
    f"{USER}:userName": "string",
    "displayName": "string",
    "externalId": "string",
    "id": "string",
    "emails.value": "string",
    "name.givenName": "string",
    "members.value": "string",
    "members.display": "string",
    "active": "boolean",
    "meta.created": "date",
    "meta.lastModified": "date",
    "meta.resourceType": "string",
}
_LITERALS: Final = {
    "string": st.one_of(
        good_text, placeholder, hostile_text, st.sampled_from(["a", "A", "@", ""])
    ).map(json.dumps),
    "boolean": st.sampled_from(["true", "false"]),
    "date": st.sampled_from(['"2020-01-01T00:00:00Z"', '"2999-12-31T23:59:59+01:00"']),
}


@st.composite
def valid_comparison(draw: st.DrawFn) -> str:
    """A well-formed comparison on an attribute a User or a Group has."""
    attr = draw(st.sampled_from(sorted(_TYPED_ATTRS)))
    if draw(st.integers(0, 6)) == 0:
        return f"{attr} pr"
    op = draw(st.sampled_from(VALID_OPS))
    return f"{attr} {op} {draw(_LITERALS[_TYPED_ATTRS[attr]])}"


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from(["and", "or", "AND", "Or"]), children).map(
            lambda t: f"{t[0]} {t[1]} {t[2]}"
        ),
        children.map(lambda c: f"not ({c})"),
        children.map(lambda c: f"({c})"),
        st.tuples(st.sampled_from(["members", "emails"]), children).map(
            lambda t: f"{t[0]}[{t[1]}]"
        ),
    )


def _combine_badly(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        _combine(children),
        st.tuples(children, st.sampled_from(["xor", "&&", ""]), children).map(
            lambda t: f"{t[0]} {t[1]} {t[2]}"
        ),
        children.map(lambda c: f"not {c}"),
        children.map(lambda c: f"({c}"),
        st.tuples(attr_name, children, st.sampled_from(["", ".value", ".", ".ZQXJ"])).map(
            lambda t: f"{t[0]}[{t[1]}]{t[2]}"
        ),
        st.tuples(attr_name, children).map(lambda t: f"{t[0]}[{t[1]}"),
    )


valid_filter = st.recursive(valid_comparison(), _combine, max_leaves=4)
junk_filter = st.recursive(
    st.one_of(comparison(), valid_comparison()), _combine_badly, max_leaves=6
)


@st.composite
def mangled(draw: st.DrawFn, base: st.SearchStrategy[str]) -> str:
    """``base`` with a few characters dropped, doubled or replaced."""
    s = draw(base)
    for _ in range(draw(st.integers(1, 3))):
        if not s:
            break
        i = draw(st.integers(0, len(s) - 1))
        s = s[:i] + draw(st.sampled_from(["", s[i] * 2, *_SPECIAL[8:16]])) + s[i + 1 :]
    return s


deep = st.tuples(
    st.integers(1, 3_000), valid_comparison(), st.sampled_from(["(", "not (", "members["])
).map(lambda t: t[2] * t[0] + t[1] + ("]" if t[2] == "members[" else ")") * t[0])
filters = st.one_of(
    valid_filter,
    valid_filter,
    junk_filter,
    mangled(valid_filter),
    deep,
    st.integers(1, 3_000).map(lambda n: " or ".join(['userName eq "a"'] * n)),
    st.text(max_size=40),
    st.just(""),
)
junk_path = st.one_of(
    st.sampled_from(USER_ATTRS + GROUP_ATTRS),
    st.tuples(
        st.sampled_from(["members", "emails", "phoneNumbers", "userName", "meta"]),
        st.one_of(valid_filter, junk_filter),
        st.sampled_from(["", ".value", ".type", ".display", ".", "]", ".ZQXJ"]),
    ).map(lambda t: f"{t[0]}[{t[1]}]{t[2]}"),
    mangled(st.sampled_from([*USER_ATTRS, 'members[value eq "@U0@"]'])),
    attr_name,
    json_scalar,
)

# -- resources and PATCH operations


def _fake_user_id(i: int) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    return "prn_" + "".join(alphabet[(i >> (5 * k)) & 31] for k in range(26))


good_member = st.fixed_dictionaries(
    {"value": st.sampled_from(["@U0@", "@U1@", "@U2@"])},
    optional={"display": good_text, "type": st.just("User")},
)
bad_member = st.fixed_dictionaries(
    {"value": st.one_of(placeholder, text_value, json_scalar)},
    optional={
        "display": text_value,
        "type": st.sampled_from(["User", "Group", "user", MARK]),
        "$ref": st.one_of(st.none(), text_value),
        MARK: json_scalar,
    },
)
members = st.one_of(
    st.lists(good_member, max_size=3),
    st.lists(good_member, max_size=3),
    st.lists(st.one_of(good_member, bad_member), min_size=1, max_size=3),
)
hostile_members = st.sampled_from(["same", "distinct"]).map(
    lambda how: (
        [{"value": "@U0@"}] * 10_001
        if how == "same"
        else [{"value": _fake_user_id(i)} for i in range(2_000)]
    )
)
emails = st.lists(
    st.fixed_dictionaries(
        {"value": good_text},
        optional={"type": st.sampled_from(["work", "home"]), "primary": st.booleans()},
    ),
    max_size=2,
)
#: Read-only attributes a client may send back (ignored, or refused when they differ).
read_only_fields: Final = {
    "id": st.one_of(placeholder, text_value),
    "meta": st.fixed_dictionaries(
        {},
        optional={
            "created": st.sampled_from(["2020-01-01T00:00:00Z", "yesterday", MARK]),
            "resourceType": st.sampled_from(["User", "Group", MARK]),
            "location": text_value,
        },
    ),
}
#: Attributes of each kind, with values of the right type.
FIELDS: Final[dict[str, dict[str, st.SearchStrategy[Any]]]] = {
    "Users": {
        "userName": good_text,
        "displayName": good_text,
        "externalId": good_text,
        "active": st.one_of(st.booleans(), st.sampled_from(["False", "True"])),
        "emails": emails,
        "name": st.fixed_dictionaries({}, optional={"givenName": good_text}),
        "title": good_text,
        ENTERPRISE: st.fixed_dictionaries({}, optional={"employeeNumber": good_text}),
        **read_only_fields,
    },
    "Groups": {
        "displayName": good_text,
        "externalId": good_text,
        "members": members,
        **read_only_fields,
    },
}
REQUIRED: Final = {"Users": "userName", "Groups": "displayName"}
SCHEMA: Final = {"Users": USER, "Groups": GROUP}
#: PATCH paths that are valid on each kind, with values of the right type.
PATCH_PATHS: Final[dict[str, dict[str, st.SearchStrategy[Any]]]] = {
    "Users": {
        **{k: v for k, v in FIELDS["Users"].items() if k != ENTERPRISE},
        "name.givenName": good_text,
        'emails[type eq "work"].value': good_text,
        'emails[type eq "work"]': st.fixed_dictionaries({"value": good_text}),
        f"{USER}:displayName": good_text,
        f"{USER}:active": st.booleans(),
        f"{ENTERPRISE}:employeeNumber": good_text,
    },
    "Groups": {
        **FIELDS["Groups"],
        "members": st.one_of(members, members, members, hostile_members),
        'members[value eq "@U0@"]': st.none(),
        'members[value eq "@U2@"]': st.none(),
        'members[value eq "@NOPE@"]': st.none(),
        f"{GROUP}:displayName": good_text,
        f"{GROUP}:members": members,
    },
}
MUTATIONS: Final = ["none"] * 5 + ["value", "text", "hostile", "extra", "drop", "long"]


@st.composite
def mutate(draw: st.DrawFn, doc: dict[str, Any]) -> dict[str, Any]:
    """``doc``, or ``doc`` broken in one place."""
    how = draw(st.sampled_from(MUTATIONS))
    keys = sorted(doc)
    if how == "none" or (not keys and how != "extra"):
        return doc
    if how == "extra":
        return {**doc, draw(json_key): draw(json_value)}
    key = draw(st.sampled_from(keys))
    if how == "drop":
        return {k: v for k, v in doc.items() if k != key}
    new = {"value": json_value, "text": text_value, "hostile": hostile_text, "long": long_text}[how]
    return {**doc, key: draw(new)}


@st.composite
def resource_body(draw: st.DrawFn, kind: str) -> Any:
    """A create/replace body for ``kind``: mostly valid, sometimes broken or huge."""
    fields = FIELDS[kind]
    doc: dict[str, Any] = {"schemas": [SCHEMA[kind]], REQUIRED[kind]: draw(fields[REQUIRED[kind]])}
    for name in draw(st.lists(st.sampled_from(sorted(fields)), max_size=4, unique=True)):
        doc[name] = draw(fields[name])
    if ENTERPRISE in doc and draw(st.booleans()):
        doc["schemas"] = [SCHEMA[kind], ENTERPRISE]
    shape = draw(st.sampled_from(["valid", "mutated", "mutated", "schemas", "members", "bytes"]))
    if shape == "mutated":
        return draw(mutate(doc))
    if shape == "schemas":
        return {
            **doc,
            "schemas": draw(st.one_of(json_value, st.just([MARK]), st.just([USER, GROUP]))),
        }
    if shape == "members":
        return {**doc, "members": draw(hostile_members)}
    if shape == "bytes":
        return draw(not_an_object)
    return doc


@st.composite
def patch_operation(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """One operation: a valid op, path and value for ``kind``, maybe broken in one place."""
    op = draw(st.sampled_from(["add", "replace", "remove", "Add", "Replace", "Remove"]))
    path = draw(st.sampled_from([None, *PATCH_PATHS[kind]]))
    operation: dict[str, Any] = {"op": op}
    if path is None:
        fields = PATCH_PATHS[kind]
        chosen = draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=3))
        operation["value"] = {name: draw(fields[name]) for name in chosen}
    else:
        operation["path"] = path
        if op.lower() != "remove" or draw(st.integers(0, 3)) == 0:
            operation["value"] = draw(PATCH_PATHS[kind][path])
    how = draw(st.sampled_from([*MUTATIONS, "op", "path", "path"]))
    if how == "op":
        return {
            **operation,
            "op": draw(st.one_of(st.sampled_from(["move", "test", ""]), json_scalar)),
        }
    if how == "path":
        return {**operation, "path": draw(junk_path)}
    return draw(mutate(operation)) if how != "none" else operation


@st.composite
def patch_body(draw: st.DrawFn, kind: str) -> Any:
    operations = draw(st.lists(patch_operation(kind), min_size=1, max_size=3))
    doc: dict[str, Any] = {"schemas": [PATCH_OP], "Operations": operations}
    shape = draw(st.sampled_from(["valid"] * 6 + ["mutated", "empty", "case", "bytes"]))
    if shape == "mutated":
        return draw(mutate(doc))
    if shape == "empty":
        return {**doc, "Operations": []}
    if shape == "case":
        return {"SCHEMAS": doc["schemas"], "operations": operations}
    if shape == "bytes":
        return draw(not_an_object)
    return doc


# -- list and search parameters

LIST_PARAMS: Final = ["startIndex", "count", "attributes", "excludedAttributes"]
valid_attr_list = st.lists(
    st.sampled_from([*_TYPED_ATTRS, "members", "emails", "name", "meta", ENTERPRISE]),
    min_size=1,
    max_size=3,
)
PARAM_VALUES: Final[dict[str, st.SearchStrategy[str]]] = {
    "startIndex": st.integers(-3, 5).map(str),
    "count": st.integers(-3, 300).map(str),
    "attributes": valid_attr_list.map(",".join),
    "excludedAttributes": valid_attr_list.map(",".join),
    "filter": filters,
    "sortBy": st.sampled_from(["userName", MARK]),
    "sortOrder": st.sampled_from(["ascending", "descending", MARK]),
}
junk_param_value = st.one_of(
    text_value,
    st.integers(min_value=-(10**25), max_value=10**25).map(str),
    st.sampled_from(["", "1e3", " 5", "0x10", "NaN", "1.5", "\u0661", "1_0"]),
    st.lists(attr_name, min_size=1, max_size=3).map(",".join),
)


@st.composite
def query_params(draw: st.DrawFn) -> list[tuple[str, str]]:
    names = draw(st.lists(st.sampled_from(sorted(PARAM_VALUES)), max_size=4, unique=True))
    query = [(name, draw(PARAM_VALUES[name])) for name in names]
    how = draw(st.sampled_from(["valid", "valid", "value", "name", "repeat"]))
    if how == "value" and query:
        i = draw(st.integers(0, len(query) - 1))
        query[i] = (query[i][0], draw(junk_param_value))
    elif how == "name":
        query.append((draw(st.one_of(marker, st.text(max_size=6))), draw(junk_param_value)))
    elif how == "repeat" and query:
        query.append(query[0])
    return query


@st.composite
def search_body(draw: st.DrawFn) -> Any:
    doc: dict[str, Any] = {"schemas": [SEARCH]}
    if draw(st.booleans()):
        doc["filter"] = draw(filters)
    for name in draw(st.lists(st.sampled_from(LIST_PARAMS), max_size=3, unique=True)):
        value = draw(PARAM_VALUES[name])
        doc[name] = value.split(",") if "ttributes" in name else int(value)
    if draw(st.integers(0, 9)) == 0:
        return draw(not_an_object)
    return draw(mutate(doc))


LIST_PATHS: Final = ["Users", "Groups"]
SEARCH_PATHS: Final = [".search", "Users/.search", "Groups/.search"]
RESOURCES: Final = ["Users/@U0@", "Users/@U1@", "Users/@U2@", "Groups/@G@"]


def _kind(path: str) -> str:
    return path.split("/", maxsplit=1)[0]


# -- 1. filters ----------------------------------------------------------------------------


@fuzz(200)
@given(path=st.sampled_from(LIST_PATHS + SEARCH_PATHS), expression=filters)
def test_any_filter_is_a_list_or_a_scim_4xx(rig: Rig, path: str, expression: str) -> None:
    if path in LIST_PATHS:
        read_only(rig, "GET", path, None, [("filter", expression)])
    else:
        read_only(rig, "POST", path, {"schemas": [SEARCH], "filter": expression}, ())


# -- 2. list parameters --------------------------------------------------------------------


@fuzz(120)
@given(path=st.sampled_from(LIST_PATHS + RESOURCES), query=query_params())
def test_any_list_parameters_are_a_list_or_a_scim_4xx(
    rig: Rig, path: str, query: list[tuple[str, str]]
) -> None:
    if path in LIST_PATHS:
        read_only(rig, "GET", path, None, query)
        return
    before = rig.resource(path)
    state = rig.state()
    r = rig.call("GET", path, None, query)
    if answer(r, 200):
        shown = _json(r)
        assert shown["id"] == before["id"]
        # attributes/excludedAttributes only ever take away
        assert set(shown) <= set(before), (shown, before)
    assert rig.state() == state, "a read wrote rows or audit entries"


@fuzz(120)
@given(path=st.sampled_from(SEARCH_PATHS), body=search_body())
def test_any_search_body_is_a_list_or_a_scim_4xx(rig: Rig, path: str, body: Any) -> None:
    read_only(rig, "POST", path, body, ())


# -- 3. PATCH --------------------------------------------------------------------------------


@fuzz(200)
@given(
    case=st.sampled_from(RESOURCES).flatmap(
        lambda path: st.tuples(st.just(path), patch_body(_kind(path)))
    )
)
def test_any_patch_applies_whole_or_not_at_all(rig: Rig, case: tuple[str, Any]) -> None:
    path, body = case
    change_is_atomic_and_audited(rig, "PATCH", path, body)


# -- 4. POST and PUT -------------------------------------------------------------------------


@fuzz(100)
@given(
    case=st.sampled_from(LIST_PATHS).flatmap(
        lambda path: st.tuples(st.just(path), resource_body(path))
    )
)
def test_any_create_is_a_resource_or_a_scim_4xx_that_writes_nothing(
    rig: Rig, case: tuple[str, Any]
) -> None:
    created_or_refused(rig, *case)


@fuzz(100)
@given(
    case=st.sampled_from(RESOURCES).flatmap(
        lambda path: st.tuples(st.just(path), resource_body(_kind(path)))
    )
)
def test_any_replace_applies_whole_or_not_at_all(rig: Rig, case: tuple[str, Any]) -> None:
    path, body = case
    change_is_atomic_and_audited(rig, "PUT", path, body)


#: The attributes callvault keeps (sealed, and HMAC-referenced where looked up).
KEPT: Final = [
    ("Users", "userName"),
    ("Users", "displayName"),
    ("Users", "externalId"),
    ("Groups", "displayName"),
    ("Groups", "externalId"),
]


@fuzz(100)
@given(
    kept=st.sampled_from(KEPT),
    value=st.one_of(hostile_text, hostile_text, hostile_text, text_value),
    how=st.sampled_from(["POST", "PUT", "PATCH", "GET", "search"]),
    quoted=st.sampled_from([json.dumps, lambda v: f'"{v}"']),  # in a filter: escaped, or raw
)
def test_any_string_in_a_kept_attribute_is_kept_or_refused(
    rig: Rig, kept: tuple[str, str], value: str, how: str, quoted: Callable[[str], str]
) -> None:
    """The strings that reach sealing, HMAC lookups and SQL: stored whole, or a 4xx."""
    kind, attribute = kept
    target = "Users/@U2@" if kind == "Users" else "Groups/@G@"
    if how == "GET":
        read_only(rig, "GET", kind, None, [("filter", f"{attribute} eq {quoted(value)}")])
    elif how == "search":
        search = {"schemas": [SEARCH], "filter": f"{attribute} eq {quoted(value)}"}
        read_only(rig, "POST", f"{kind}/.search", search, ())
    elif how == "PATCH":
        operation = {"op": "replace", "path": attribute, "value": value}
        change_is_atomic_and_audited(
            rig, "PATCH", target, {"schemas": [PATCH_OP], "Operations": [operation]}
        )
    else:
        doc = {"schemas": [SCHEMA[kind]], REQUIRED[kind]: f"new-{kind}", attribute: value}
        if how == "POST":
            created_or_refused(rig, kind, doc)
        else:
            change_is_atomic_and_audited(rig, "PUT", target, doc)


# -- 5. nothing sent is quoted back ------------------------------------------------------------


def _at(doc: Any, route: Sequence[str | int], value: Any) -> Any:
    """``doc`` with ``value`` put at ``route`` (keys of objects, indices of lists)."""
    if not route:
        return value
    head, rest = route[0], route[1:]
    if isinstance(head, int):
        return [_at(doc[0] if doc else {}, rest, value)]
    return {**doc, head: _at(doc.get(head, {}), rest, value)}


#: Valid requests, each with the places a marked value is put in them.
_VALID: Final[list[tuple[str, str, Any, list[tuple[str | int, ...]]]]] = [
    (
        "POST",
        "Users",
        {"schemas": [USER], "userName": "new@example.com", "emails": [{"value": "a@b.c"}]},
        [
            ("userName",),
            ("displayName",),
            ("externalId",),
            ("active",),
            ("emails", 0, "value"),
            ("emails", 0, "type"),
            ("name", "givenName"),
            ("title",),
            (ENTERPRISE, "employeeNumber"),
            ("schemas", 0),
            ("id",),
            ("meta", "created"),
        ],
    ),
    (
        "PUT",
        "Users/@U2@",
        {"schemas": [USER], "userName": "cy@example.com", "active": True},
        [("userName",), ("displayName",), ("externalId",), ("active",), ("emails", 0, "value")],
    ),
    (
        "POST",
        "Groups",
        {"schemas": [GROUP], "displayName": "New", "members": [{"value": "@U0@"}]},
        [
            ("displayName",),
            ("externalId",),
            ("members", 0, "value"),
            ("members", 0, "type"),
            ("members", 0, "$ref"),
            ("members", 0, "display"),
        ],
    ),
    (
        "PATCH",
        "Users/@U2@",
        {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": True}]},
        [
            ("Operations", 0, "op"),
            ("Operations", 0, "path"),
            ("Operations", 0, "value"),
            ("schemas", 0),
        ],
    ),
    (
        "PATCH",
        "Groups/@G@",
        {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": "@U2@"}]}],
        },
        [
            ("Operations", 0, "path"),
            ("Operations", 0, "value", 0, "value"),
            ("Operations", 0, "value", 0, "type"),
            ("Operations", 0, "value"),
        ],
    ),
    (
        "POST",
        ".search",
        {"schemas": [SEARCH], "filter": 'userName eq "x"', "attributes": ["userName"]},
        [("filter",), ("attributes", 0), ("excludedAttributes", 0), ("startIndex",), ("count",)],
    ),
]


@st.composite
def marked(draw: st.DrawFn) -> str:
    """A string carrying the marker, shaped as the places it goes expect (or not)."""
    mark = draw(marker)
    return draw(
        st.sampled_from(
            [
                mark,
                f"{mark}@example.com",
                f'"{mark}"',
                f'userName eq "{mark}"',
                f'userName eq "{mark}" and',
                f'members[value eq "{mark}"]',
                f'emails[type eq "{mark}"].value',
                f"{mark} pr",
                f"{mark}.{mark}",
                f"urn:{mark}:x",
                f"{USER}:{mark}",
                f"prn_{mark.lower()}",
                f"{mark}\ud800",
            ]
        )
    )


@st.composite
def marked_request(draw: st.DrawFn) -> tuple[str, str, Any]:
    """A valid request with a marked string put in one place (a value or a name)."""
    method, path, doc, places = draw(st.sampled_from(_VALID))
    shape = draw(marked())
    wrap = draw(st.sampled_from(["plain", "list", "object", "key"]))
    value: Any = {"plain": shape, "list": [shape], "object": {"value": shape}, "key": {shape: 1}}[
        wrap
    ]
    if wrap == "key" and draw(st.booleans()):
        return method, path, {**doc, shape: 1}  # a marked attribute name at the top level
    return method, path, _at(doc, draw(st.sampled_from(places)), value)


@fuzz(120)
@given(
    case=marked_request(),
    target=st.sampled_from([*LIST_PATHS, "Users/@U0@", "Groups/@G@"]),
    param=st.sampled_from([*LIST_PARAMS, "filter", "filter", "key", "key twice"]),
    shape=marked(),
)
def test_no_error_quotes_a_submitted_value(
    rig: Rig, case: tuple[str, str, Any], target: str, param: str, shape: str
) -> None:
    method, path, doc = case  # every 4xx goes through assert_scim_error, which seeks the marker
    if method in {"PATCH", "PUT"}:
        change_is_atomic_and_audited(rig, method, path, doc)
    elif path.endswith(".search"):
        read_only(rig, method, path, doc, ())
    else:
        created_or_refused(rig, path, doc)
    names = {"key": [(shape, "1")], "key twice": [(shape, "1"), (shape, "2")]}
    query = names.get(param, [(param, shape)])
    r = rig.call("GET", target, None, query)
    if r.status != 200:
        assert_scim_error(r)


def test_the_marker_check_can_fail() -> None:
    """The marker check sees a quoted value (so the fuzz above can fail)."""
    body = json.dumps(
        {
            "schemas": [ERROR],
            "status": "400",
            "scimType": "invalidValue",
            "detail": f"bad value {MARK}abc",
        }
    ).encode()
    with pytest.raises(AssertionError):
        assert_scim_error(ScimResponse(400, body))


def test_the_fixture_is_what_the_fuzz_assumes(rig: Rig) -> None:
    group = rig.resource("Groups/@G@")
    assert sorted(m["value"] for m in group["members"]) == sorted(rig.users[:2])
    assert rig.call("GET", "Users/@DEL@").status == 404
    assert re.fullmatch(r"prn_[a-z0-9]{26}", rig.users[0])
