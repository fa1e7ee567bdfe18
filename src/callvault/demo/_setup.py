"""The demo's configuration, made through the API with the owner's key, reused when present.

One deployment and one agent named ``demo``; three principals bound at the
deployment's scope: a QA reviewer (``qa_reviewer``: redacted transcripts,
masked audio), a compliance officer (``compliance_officer``: everything) and
the service account that streams the calls (``ingest``: the owner may
configure the tenant but not feed or read calls, by separation of duties).
Each finds-or-creates, so a second run reuses them; API keys are shown only
once, so every run issues fresh ones (short-lived: ``KEY_TTL_DAYS``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from callvault.demo._http import Api
from callvault.errors import ConflictError

NAME: Final = "demo"
#: Role names as the API takes them: ``callvault.access.Role`` values, not imported
#: (the access package loads the policy engine, which a client does not need).
QA_REVIEWER: Final = "qa_reviewer"
COMPLIANCE_OFFICER: Final = "compliance_officer"
INGEST: Final = "ingest"
KEY_TTL_DAYS: Final = 7
KEY_LABEL: Final = "callvault demo"
_AGENT_PROMPT: Final = "A demo agent: the calls on it are synthesised by `callvault demo`."


@dataclass(frozen=True, slots=True)
class Member:
    """A demo principal and the key issued to it on this run."""

    principal_id: str
    name: str
    role: str
    key: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class DemoSetup:
    deployment_id: str
    agent_id: str
    qa: Member
    compliance: Member
    ingest: Member


def _find_or_create(
    find: Callable[[], dict[str, Any] | None], create: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """``find()``, else ``create()``; a create that lost a race to another run finds again."""
    found = find()
    if found is not None:
        return found
    try:
        return create()
    except ConflictError:
        again = find()
        if again is None:
            raise
        return again


def _named(rows: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((r for r in rows if r.get("name") == name), None)


def _member(api: Api, deployment_id: str, name: str, kind: str, role: str) -> Member:
    row = _find_or_create(
        lambda: _named(api.get("/v1/principals"), name),
        lambda: api.post("/v1/principals", {"name": name, "kind": kind}),
    )
    pid = str(row["id"])
    bound = any(
        b["role"] == role and b["scope_kind"] == "deployment" and b["scope_id"] == deployment_id
        for b in row.get("bindings", [])
    )
    if not bound:
        # A conflict means another run bound it meanwhile: what we wanted.
        with contextlib.suppress(ConflictError):
            api.post(
                f"/v1/principals/{pid}/roles",
                {"role": role, "scope": {"kind": "deployment", "id": deployment_id}},
            )
    key = api.post(f"/v1/principals/{pid}/keys", {"label": KEY_LABEL, "ttl_days": KEY_TTL_DAYS})
    return Member(principal_id=pid, name=name, role=role, key=str(key["token"]))


def ensure_setup(api: Api) -> DemoSetup:
    """Find or create the demo deployment, agent and principals; issue this run's keys."""
    dep = _find_or_create(
        lambda: _named(api.get("/v1/deployments"), NAME),
        lambda: api.post("/v1/deployments", {"name": NAME}),
    )
    dep_id = str(dep["id"])
    agent = _find_or_create(
        lambda: _named(api.get(f"/v1/deployments/{dep_id}/agents"), NAME),
        lambda: api.post(
            f"/v1/deployments/{dep_id}/agents", {"name": NAME, "prompt": _AGENT_PROMPT}
        ),
    )
    return DemoSetup(
        deployment_id=dep_id,
        agent_id=str(agent["id"]),
        qa=_member(api, dep_id, "demo-qa-reviewer", "user", QA_REVIEWER),
        compliance=_member(api, dep_id, "demo-compliance-officer", "user", COMPLIANCE_OFFICER),
        ingest=_member(api, dep_id, "demo-ingest", "service", INGEST),
    )
