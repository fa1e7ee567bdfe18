"""Bad input gets a clear 4xx problem+json that names the field, echoes nothing, writes nothing.

Every case sends something malformed with a credential that would be
allowed to make the well-formed request, so validation (not authorization)
answers. Each asserts the status, the ``application/problem+json`` type,
that ``errors[].field`` (or ``detail``) names the offending field, that
distinctive submitted values (a test card number, unique markers) do not
come back, and that no table (audit entries and config versions included)
gained or lost a row.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callvault.api import create_app
from tests.unit.api._harness import Installation, auth, installation, problem_json, row_counts

CARD = "4111111111111111"
MARK = "zq-marker-5f3c9e"
NO_SUCH_VERSION = "0" * 64


@dataclass
class Env:
    inst: Installation
    dep0_version: str

    @property
    def client(self) -> Any:
        return self.inst.client


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    data: Path = tmp_path_factory.mktemp("bad-input") / "data"
    with installation(data) as inst:
        a = inst.world.a
        resp = inst.client.get(f"/v1/deployments/{a.deployments[0]}", headers=auth(a.owner_token))
        yield Env(inst=inst, dep0_version=resp.json()["current_version_id"])


# -- the cases ---------------------------------------------------------------------------------

Ids = dict[str, str]


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: Callable[[Ids], str]
    field: str  # the offending field: errors[].field equals it or starts with it + "."
    status: int = 422
    body: Callable[[Ids], Any] | None = None  # sent as JSON
    raw: bytes | None = None  # sent as is (overrides body)
    content_type: str = "application/json"
    query: dict[str, str] | None = None
    who: str = "owner"  # or "ingest"
    markers: tuple[str, ...] = (CARD, MARK)
    message: str | None = None  # a word the field's message must contain

    def __str__(self) -> str:
        return self.name


def _seg(**over: Any) -> dict[str, Any]:
    return {"speaker": "caller", "start_ms": 0, "end_ms": 100, "text": "hello", **over}


def _segments(*segs: dict[str, Any]) -> dict[str, Any]:
    return {"segments": list(segs)}


def _dep(ids: Ids) -> str:
    return f"/v1/deployments/{ids['dep0']}"


def _agent(ids: Ids) -> str:
    return f"/v1/agents/{ids['agent0']}"


def _call(ids: Ids, what: str) -> str:
    return f"/v1/calls/{ids['call0']}/{what}"


_MANY = 501

CASES: tuple[Case, ...] = (
    # unknown fields
    Case(
        "unknown field in a create",
        "POST",
        lambda _: "/v1/deployments",
        "body.colour",
        body=lambda _: {"name": "dep-unknown", "colour": CARD},
    ),
    Case(
        "unknown field next to a prompt",
        "PATCH",
        _agent,
        "body.temperature",
        body=lambda _: {"prompt": f"secret prompt {MARK}", "temperature": 1},
    ),
    Case(
        "unknown field in a nested segment",
        "POST",
        lambda i: _call(i, "segments"),
        "body.segments.0.confidence",
        body=lambda _: _segments(_seg(text=f"my card is {CARD}", confidence=CARD)),
        who="ingest",
    ),
    Case(
        "unknown field in a principal",
        "POST",
        lambda _: "/v1/principals",
        "body.email",
        body=lambda _: {"name": "p-unknown", "email": f"{MARK}@example.com"},
    ),
    Case(
        "unknown field in a binding scope",
        "POST",
        lambda i: f"/v1/principals/{i['principal']}/roles",
        "body.scope.extra",
        body=lambda i: {
            "role": "qa_reviewer",
            "scope": {"kind": "tenant", "id": i["tenant"], "extra": CARD},
        },
    ),
    # wrong types
    Case(
        "string for an int (retention days)",
        "PATCH",
        _dep,
        "body.retention.transcripts_days",
        body=lambda _: {"retention": {"transcripts_days": CARD}},
    ),
    Case(
        "string for an int (segment start)",
        "POST",
        lambda i: _call(i, "segments"),
        "body.segments.0.start_ms",
        body=lambda _: _segments(_seg(start_ms="0", text=CARD)),
        who="ingest",
    ),
    Case(
        "int for a string (deployment name)",
        "POST",
        lambda _: "/v1/deployments",
        "body.name",
        body=lambda _: {"name": int(CARD)},
    ),
    Case(
        "int for a string (segment text)",
        "POST",
        lambda i: _call(i, "segments"),
        "body.segments.0.text",
        body=lambda _: _segments(_seg(text=int(CARD))),
        who="ingest",
    ),
    Case(
        "int for a string (caller number)",
        "POST",
        lambda i: f"/v1/agents/{i['agent0']}/calls",
        "body.caller_number",
        body=lambda _: {"direction": "inbound", "caller_number": int(CARD)},
        who="ingest",
    ),
    Case(
        "bool for a string (principal name)",
        "POST",
        lambda _: "/v1/principals",
        "body.name",
        body=lambda _: {"name": True, "kind": "user"},
    ),
    Case(
        "string for a bool (is_final)",
        "POST",
        lambda i: _call(i, "segments"),
        "body.segments.0.is_final",
        body=lambda _: _segments(_seg(is_final="yes", text=CARD)),
        who="ingest",
    ),
    Case(
        "float for an int (key ttl)",
        "POST",
        lambda i: f"/v1/principals/{i['principal']}/keys",
        "body.ttl_days",
        body=lambda _: {"label": MARK, "ttl_days": 1.5},
    ),
    Case(
        "object for a list (segments)",
        "POST",
        lambda i: _call(i, "segments"),
        "body.segments",
        body=lambda _: {"segments": {"0": _seg(text=CARD)}},
        who="ingest",
    ),
    # invalid region names
    Case(
        "unknown region at create",
        "POST",
        lambda _: "/v1/deployments",
        "body.region",
        body=lambda _: {"name": "dep-region", "region": f"mars-{CARD}"},
    ),
    Case(
        "region in the wrong case at update",
        "PATCH",
        _dep,
        "body.region",
        body=lambda _: {"region": "EU-WEST-2"},
    ),
    # malformed ids in paths, query parameters and bodies
    Case(
        "malformed agent id in the path",
        "GET",
        lambda _: f"/v1/agents/agt_{CARD}",
        "path.agent_id",
    ),
    Case(
        "upper-case call id in the path",
        "GET",
        lambda _: f"/v1/calls/CALL_{MARK.upper().replace('-', '')}/transcript",
        "path.call_id",
        markers=(MARK.upper().replace("-", ""),),
    ),
    Case(
        "malformed principal id in the path",
        "POST",
        lambda _: f"/v1/principals/prn_{MARK}/roles",
        "path.principal_id",
        body=lambda i: {"role": "qa_reviewer", "scope": {"kind": "tenant", "id": i["tenant"]}},
    ),
    Case(
        "over-long key id in the path",
        "DELETE",
        lambda _: "/v1/keys/key_" + "a" * 60,
        "path.key_id",
        markers=("a" * 60,),
    ),
    Case(
        "malformed deployment id in a query",
        "GET",
        lambda _: "/v1/calls",
        "query.deployment_id",
        query={"deployment_id": CARD},
    ),
    Case(
        "injection in an agent id query",
        "GET",
        lambda _: "/v1/calls",
        "query.agent_id",
        query={"agent_id": f"agt_' OR 1=1 -- {MARK}"},
    ),
    Case(
        "malformed scope id in a body",
        "POST",
        lambda i: f"/v1/principals/{i['principal']}/roles",
        "body.scope.id",
        body=lambda _: {"role": "qa_reviewer", "scope": {"kind": "deployment", "id": CARD}},
    ),
    # malformed JSON and bodies that are not objects
    Case(
        "truncated JSON",
        "POST",
        lambda _: "/v1/deployments",
        "body",
        raw=f'{{"name": "{CARD}",'.encode(),
    ),
    Case(
        "single-quoted pseudo-JSON",
        "PATCH",
        lambda _: "/v1/tenant",
        "body",
        raw=f"{{'name': '{MARK}'}}".encode(),
    ),
    Case(
        "NaN literal for an int",
        "POST",
        lambda i: _call(i, "events"),
        "body.events.0.at_ms",
        raw=b'{"events": [{"kind": "mark", "at_ms": NaN}]}',
        who="ingest",
    ),
    Case(
        "JSON sent as text/plain",
        "POST",
        lambda _: "/v1/deployments",
        "body",
        raw=json.dumps({"name": f"dep-{MARK}"}).encode(),
        content_type="text/plain",
    ),
    Case("array body", "POST", lambda _: "/v1/deployments", "body", body=lambda _: [CARD]),
    Case("string body", "POST", lambda _: "/v1/deployments", "body", body=lambda _: CARD),
    Case("number body", "PATCH", _agent, "body", body=lambda _: int(CARD)),
    Case("null body", "POST", lambda _: "/v1/principals", "body", raw=b"null"),
    Case("empty body", "POST", lambda i: f"/v1/agents/{i['agent0']}/calls", "body", raw=b""),
    # invalid version ids
    Case(
        "short version id",
        "GET",
        lambda _: f"/v1/tenant/versions/v1{MARK}",
        "path.version_id",
    ),
    Case(
        "upper-case version id",
        "POST",
        lambda i: f"/v1/deployments/{i['dep0']}/versions/{i['dep0_v'].upper()}/revert",
        "path.version_id",
        markers=(),
    ),
    Case(
        "malformed version id in a diff query",
        "GET",
        lambda i: f"/v1/agents/{i['agent0']}/versions/diff",
        "query.from",
        query={"from": CARD, "to": "0" * 64},
    ),
    Case(
        "well-formed version id that does not exist",
        "GET",
        lambda _: f"/v1/tenant/versions/{NO_SUCH_VERSION}",
        "version_id",
        status=404,
        markers=(),
    ),
    # end before start
    Case(
        "segment ends before it starts",
        "POST",
        lambda i: _call(i, "segments"),
        "body.segments.0",
        body=lambda _: _segments(_seg(start_ms=500, end_ms=100, text=CARD)),
        who="ingest",
        message="end_ms",
    ),
    Case(
        "word ends before it starts",
        "POST",
        lambda i: _call(i, "segments"),
        "body.segments.0.words.0",
        body=lambda _: _segments(
            _seg(text=CARD, words=[{"text": CARD, "start_ms": 90, "end_ms": 10}])
        ),
        who="ingest",
        message="end_ms",
    ),
    # too many items
    Case(
        "too many segments",
        "POST",
        lambda i: _call(i, "segments"),
        "body.segments",
        body=lambda _: _segments(*[_seg(text=CARD)] * _MANY),
        who="ingest",
    ),
    Case(
        "no segments",
        "POST",
        lambda i: _call(i, "segments"),
        "body.segments",
        body=lambda _: _segments(),
        who="ingest",
    ),
    Case(
        "too many events",
        "POST",
        lambda i: _call(i, "events"),
        "body.events",
        body=lambda _: {"events": [{"kind": "dtmf", "at_ms": 1, "detail": {"d": CARD}}] * _MANY},
        who="ingest",
    ),
    Case(
        "too many knowledge documents",
        "PATCH",
        _agent,
        "body.documents",
        body=lambda _: {"documents": [{"name": f"d{n}", "text": CARD} for n in range(101)]},
    ),
    # numbers that canonical JSON (RFC 8785 / I-JSON) cannot carry
    Case(
        "integer beyond 2^53 in event detail",
        "POST",
        lambda i: _call(i, "events"),
        "body.events.0.detail",
        body=lambda _: {"events": [{"kind": "custom", "at_ms": 1, "detail": {"n": 2**60}}]},
        who="ingest",
        markers=(str(2**60),),
    ),
    Case(
        "NaN in event detail",
        "POST",
        lambda i: _call(i, "events"),
        "body.events.0.detail",
        raw=b'{"events": [{"kind": "custom", "at_ms": 1, "detail": {"n": NaN}}]}',
        who="ingest",
    ),
    Case(
        "Infinity in tool parameters (not silently stored as null)",
        "PATCH",
        _agent,
        "body.tools.0.parameters",
        raw=b'{"tools": [{"name": "lookup", "parameters": {"maximum": Infinity}}]}',
    ),
    Case(
        "integer beyond 2^53 in tool parameters",
        "PATCH",
        _agent,
        "body.tools.0.parameters",
        body=lambda _: {"tools": [{"name": "lookup", "parameters": {"maximum": 2**60}}]},
        markers=(str(2**60),),
    ),
)


def _ids(env: Env) -> Ids:
    a = env.inst.world.a
    return {
        "tenant": a.id,
        "dep0": a.deployments[0],
        "agent0": a.agents[0],
        "call0": a.calls[0],
        "principal": a.principals[("qa_reviewer", "tenant")],
        "dep0_v": env.dep0_version,
    }


def _token(env: Env, who: str) -> str:
    a = env.inst.world.a
    return a.owner_token if who == "owner" else a.tokens[("ingest", "tenant")]


def _names_field(doc: dict[str, Any], want: str, message: str | None) -> bool:
    for err in doc.get("errors", []):
        got = str(err.get("field", ""))
        if (got == want or got.startswith(want + ".")) and (
            message is None or message in str(err.get("message", ""))
        ):
            return True
    return False


def _assert_clean_refusal(
    resp: httpx.Response, status: int, markers: tuple[str, ...]
) -> dict[str, Any]:
    assert resp.status_code == status, resp.text[:400]
    doc = problem_json(resp)
    for marker in markers:
        assert marker not in resp.text, f"reply echoes the submitted value {marker!r}: {resp.text}"
    assert "Traceback" not in resp.text
    return doc


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input_is_refused_clearly_and_writes_nothing(env: Env, case: Case) -> None:
    ids = _ids(env)
    before = row_counts(env.inst.rt)
    headers = auth(_token(env, case.who))
    kwargs: dict[str, Any] = {"params": case.query, "headers": headers}
    if case.raw is not None:
        kwargs["content"] = case.raw
        headers["Content-Type"] = case.content_type
    elif case.body is not None:
        kwargs["content"] = json.dumps(case.body(ids)).encode()
        headers["Content-Type"] = case.content_type
    resp = env.client.request(case.method, case.path(ids), **kwargs)

    doc = _assert_clean_refusal(resp, case.status, case.markers)
    assert _names_field(doc, case.field, case.message), (
        f"no errors[].field naming {case.field!r}: {doc}"
    )
    assert row_counts(env.inst.rt) == before


# -- oversized bodies --------------------------------------------------------------------------


def _oversized_segments(env: Env) -> bytes:
    limit = env.inst.rt.settings.max_body_bytes
    text = (f"my card number is {CARD} " * (limit // 20))[: limit + 100]
    return json.dumps(_segments(_seg(text=text))).encode()


def test_oversized_body_with_content_length_is_refused(env: Env) -> None:
    body = _oversized_segments(env)
    before = row_counts(env.inst.rt)
    resp = env.client.post(
        _call(_ids(env), "segments"),
        content=body,
        headers={**auth(_token(env, "ingest")), "Content-Type": "application/json"},
    )
    doc = _assert_clean_refusal(resp, 413, (CARD,))
    assert "body" in doc.get("detail", "")
    assert row_counts(env.inst.rt) == before


def test_oversized_chunked_body_is_refused(env: Env) -> None:
    body = _oversized_segments(env)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    before = row_counts(env.inst.rt)
    resp = env.client.post(
        _call(_ids(env), "segments"),
        content=chunks(),
        headers={**auth(_token(env, "ingest")), "Content-Type": "application/json"},
    )
    assert "content-length" not in {k.lower() for k in resp.request.headers}
    doc = _assert_clean_refusal(resp, 413, (CARD,))
    assert "body" in doc.get("detail", ""), f"413 without a detail naming the body: {doc}"
    assert row_counts(env.inst.rt) == before


def test_streamed_body_stops_being_read_at_the_limit(env: Env) -> None:
    """Raw ASGI, many small chunks and no Content-Length: refused once over the limit."""
    limit = env.inst.rt.settings.max_body_bytes
    chunk = json.dumps({"x": CARD}).encode().ljust(32 * 1024, b" ")
    total = 4 * limit // len(chunk)
    sent = 0
    out: list[dict[str, Any]] = []
    app = create_app(env.inst.rt)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "server": ("testserver", 443),
        "client": ("127.0.0.1", 1234),
        "root_path": "",
        "path": _call(_ids(env), "segments"),
        "raw_path": _call(_ids(env), "segments").encode(),
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"transfer-encoding", b"chunked"),
            (b"authorization", f"Bearer {_token(env, 'ingest')}".encode()),
        ],
    }

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent >= total:
            return {"type": "http.disconnect"}
        sent += 1
        return {"type": "http.request", "body": chunk, "more_body": sent < total}

    async def send(message: dict[str, Any]) -> None:
        out.append(message)

    before = row_counts(env.inst.rt)
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    start = next(m for m in out if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in out if m["type"] == "http.response.body")
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    assert start["status"] == 413
    assert headers["content-type"] == "application/problem+json"
    assert CARD.encode() not in body
    assert sent * len(chunk) <= limit + len(chunk), "kept reading past the limit"
    assert row_counts(env.inst.rt) == before


# -- fuzzing every POST/PATCH route -----------------------------------------------------------

_SAFE_TEXT = st.text(st.characters(codec="utf-8"), max_size=20)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _SAFE_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_SAFE_TEXT, inner, max_size=4),
    max_leaves=12,
)


@dataclass(frozen=True)
class Route:
    method: str
    path: Callable[[Ids], str]
    valid: Callable[[Ids], dict[str, Any]]
    who: str = "owner"
    label: str = field(default="")

    def __str__(self) -> str:
        return self.label


def _fuzz_routes() -> tuple[Route, ...]:
    def r(
        method: str, label: str, path: Callable[[Ids], str], valid: Any, who: str = "owner"
    ) -> Route:
        return Route(method, path, valid, who, f"{method} {label}")

    return (
        r("PATCH", "/v1/tenant", lambda _: "/v1/tenant", lambda _: {"name": "t"}),
        r("POST", "/v1/deployments", lambda _: "/v1/deployments", lambda _: {"name": "d"}),
        r(
            "PATCH",
            "/v1/deployments/{id}",
            lambda i: f"/v1/deployments/{i['dep0']}",
            lambda _: {"name": "d", "retention": {"recordings_days": 5}},
        ),
        r(
            "POST",
            "/v1/deployments/{id}/agents",
            lambda i: f"/v1/deployments/{i['dep0']}/agents",
            lambda _: {
                "name": "a",
                "prompt": "p",
                "documents": [{"name": "n", "text": "t"}],
                "tools": [{"name": "t", "description": "d", "parameters": {"type": "object"}}],
            },
        ),
        r(
            "PATCH",
            "/v1/agents/{id}",
            lambda i: f"/v1/agents/{i['agent0']}",
            lambda _: {"prompt": "p", "tools": [{"name": "t", "parameters": {}}]},
        ),
        r(
            "POST",
            "/v1/tenant/versions/{v}/revert",
            lambda i: f"/v1/tenant/versions/{i['tenant_v']}/revert",
            lambda _: {},
        ),
        r(
            "POST",
            "/v1/deployments/{id}/versions/{v}/revert",
            lambda i: f"/v1/deployments/{i['dep0']}/versions/{i['dep0_v']}/revert",
            lambda _: {},
        ),
        r(
            "POST",
            "/v1/agents/{id}/versions/{v}/revert",
            lambda i: f"/v1/agents/{i['agent0']}/versions/{i['agent0_v']}/revert",
            lambda _: {},
        ),
        r("POST", "/v1/principals", lambda _: "/v1/principals", lambda _: {"name": "p"}),
        r(
            "POST",
            "/v1/principals/{id}/roles",
            lambda i: f"/v1/principals/{i['principal']}/roles",
            lambda i: {"role": "auditor", "scope": {"kind": "agent", "id": i["agent0"]}},
        ),
        r(
            "POST",
            "/v1/principals/{id}/keys",
            lambda i: f"/v1/principals/{i['principal']}/keys",
            lambda _: {"label": "k", "ttl_days": 3},
        ),
        r(
            "POST",
            "/v1/agents/{id}/calls",
            lambda i: f"/v1/agents/{i['agent0']}/calls",
            lambda _: {"direction": "inbound", "caller_number": "+1 555 0100"},
            "ingest",
        ),
        r(
            "POST",
            "/v1/calls/{id}/segments",
            lambda i: f"/v1/calls/{i['call0']}/segments",
            lambda _: _segments(_seg(words=[{"text": "w", "start_ms": 0, "end_ms": 5}])),
            "ingest",
        ),
        r(
            "POST",
            "/v1/calls/{id}/events",
            lambda i: f"/v1/calls/{i['call0']}/events",
            lambda _: {"events": [{"kind": "tool_call", "at_ms": 3, "detail": {"k": "v"}}]},
            "ingest",
        ),
        r(
            "POST",
            "/v1/calls/{id}/end",
            lambda i: f"/v1/calls/{i['call1']}/end",
            lambda _: {"status": "failed"},
            "ingest",
        ),
    )


FUZZ_ROUTES = _fuzz_routes()


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into ``doc`` (the empty path is the document itself)."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for n, v in enumerate(doc):
            out += _paths(v, (*prefix, n))
    return out


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = json.loads(json.dumps(doc))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return copy


@st.composite
def _bodies(draw: st.DrawFn, valid: dict[str, Any]) -> Any:
    """Random JSON; or the valid body with one value replaced or one key added."""
    how = draw(st.sampled_from(["random", "replace", "add"]))
    if how == "random":
        return draw(JSON)
    if how == "replace":
        return _set(valid, draw(st.sampled_from(_paths(valid))), draw(JSON))
    objects = [p for p in _paths(valid) if isinstance(_get(valid, p), dict)]
    path = draw(st.sampled_from(objects))
    return _set(valid, (*path, draw(_SAFE_TEXT)), draw(JSON))


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def _fuzz_ids(env: Env) -> Ids:
    """Tenant b, so the fuzzing cannot disturb the cases above (which use tenant a)."""
    b = env.inst.world.b
    owner = auth(b.owner_token)
    c = env.client
    return {
        "tenant": b.id,
        "dep0": b.deployments[0],
        "agent0": b.agents[0],
        "call0": b.calls[0],
        "call1": b.calls[1],
        "principal": b.principals[("developer", "dep0")],
        "tenant_v": _first_version(c, owner, "/v1/tenant/versions"),
        "dep0_v": _first_version(c, owner, f"/v1/deployments/{b.deployments[0]}/versions"),
        "agent0_v": _first_version(c, owner, f"/v1/agents/{b.agents[0]}/versions"),
    }


def _first_version(client: Any, headers: dict[str, str], path: str) -> str:
    resp = client.get(path, headers=headers)
    assert resp.status_code == 200, resp.text
    return str(resp.json()[0]["id"])


@pytest.mark.parametrize("route", FUZZ_ROUTES, ids=str)
def test_random_json_never_breaks_a_route(env: Env, route: Route) -> None:
    ids = _fuzz_ids(env)
    b = env.inst.world.b
    token = b.owner_token if route.who == "owner" else b.tokens[("ingest", "tenant")]
    url = route.path(ids)

    @settings(
        max_examples=int(os.environ.get("CV_FUZZ_EXAMPLES", "30")),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(body=_bodies(route.valid(ids)))
    def check(body: Any) -> None:
        resp = env.client.request(route.method, url, json=body, headers=auth(token))
        assert resp.status_code < 500, f"{resp.status_code} for {body!r}: {resp.text[:300]}"
        if resp.status_code >= 400:
            doc = problem_json(resp)
            assert doc["status"] == resp.status_code

    check()
