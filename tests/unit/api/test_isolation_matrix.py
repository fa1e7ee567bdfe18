"""The access-control matrix: every route x role x binding scope x target.

The expectations below are written from the intended policy, *not* derived
from ``callvault.access.roles`` (a table computed from the implementation
could never disagree with it):

- owner / admin run the tenant (tenant, deployments, agents and their
  configuration, principals and keys, audit) but never read call content;
  only an owner may grant the owner role;
- compliance_officer reads everything a reviewer may: full and redacted
  transcripts, the audit log, configuration and its versions (agent prompts
  included), and metadata;
- qa_reviewer reads redacted transcripts and metadata only;
- developer manages agents (create, update, revert, read their
  configuration and its history) and reads metadata, no call content;
- auditor reads the audit log, configuration history, principals and
  metadata, and no content (so not an agent's prompt, current or past);
- ingest creates calls and feeds them (segments, events, end) and reads
  agent metadata only.

Scope containment: a binding at tenant scope covers everything in the
tenant; at deployment 0 it covers dep0, its agents and their calls; at
agent 0 it covers agent0 and its calls. Tenant-level operations (the
tenant itself, creating deployments, principals and keys, the audit log,
listing every call) need a tenant-scope binding.

Status rules: allowed -> the route's 2xx; denied while the caller may see
the resource (holds its metadata read) -> 403; denied and cannot see it ->
404. Another tenant's ids answer exactly what an id that exists nowhere
answers (compared body for body), which for a deployment, agent or call is
always 404; for a principal, key or tenant-version id the route decides on
the caller's own tenant first, so a caller without the permission gets the
same 403/404 whatever the id, and one with it gets 404. Every denial leaves
a ``denied`` audit entry in the caller's tenant; every allowed read of a
transcript or of agent configuration leaves an ``allowed`` one, and nothing
lands in the other tenant's log.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

import httpx
import pytest

from callvault import access, calls, scim, sessions, sso, tenancy
from callvault.api.app import create_fastapi
from callvault.store import new_id
from tests.support.processor import SECRET, running_processor
from tests.support.world import PROMPT, TRANSCRIPT, TenantWorld, add_card_tokens
from tests.unit.api._harness import (
    Installation,
    audit_entries,
    audit_size,
    auth,
    installation,
    is_problem,
)
from tests.unit.sso import _double as sso_double

# -- the expectation table ---------------------------------------------------------------------

ROLES = (
    "owner",
    "admin",
    "compliance_officer",
    "qa_reviewer",
    "developer",
    "auditor",
    "ingest",
    "payment_operator",
)
SCOPES = ("tenant", "dep0", "agent0")

#: Metadata reads (ids, names, regions, timestamps, call status and counts).
_METADATA = frozenset({"tenant.read", "deployment.read", "agent.read", "call.read", "call.list"})
_RUN_TENANT = _METADATA | {
    "tenant.update",
    "deployment.create",
    "deployment.update",
    "agent.create",
    "agent.update",
    "agent.config",  # an agent's prompt, documents, tools: current or any past version
    "history.tenant",  # the list of configuration versions (metadata of each)
    "history.deployment",
    "history.agent",
    "config.tenant",  # the content of a tenant / deployment version (settings, no customer text)
    "config.deployment",
    "principal.read",
    "principal.manage",
    "audit.read",
    "break_glass.read",  # operators' break-glass requests (callvault.operators)
    "break_glass.approve",  # approve, deny, revoke them
}
_HISTORY = frozenset({"history.tenant", "history.deployment", "history.agent"})

#: role -> what it may do (within the scope it is bound at).
ALLOWED: dict[str, frozenset[str]] = {
    "owner": _RUN_TENANT | {"principal.grant_owner"},
    "admin": _RUN_TENANT,
    "compliance_officer": _METADATA
    | _HISTORY
    | {
        "transcript.full",
        "transcript.redacted",
        "recording.full",
        "recording.masked",
        "audit.read",
        "config.tenant",
        "config.deployment",
        # Reads "everything": so also prompts. The implementation refuses (roles.py gives
        # compliance_officer no agent:read_config); see the report accompanying this table.
        "agent.config",
    },
    "qa_reviewer": _METADATA | {"transcript.redacted", "recording.masked"},
    # Agents only: no tenant or deployment configuration history (the implementation's single
    # config:read action grants those too).
    "developer": _METADATA | {"agent.create", "agent.update", "agent.config", "history.agent"},
    "auditor": _METADATA
    | _HISTORY
    | {"audit.read", "principal.read", "config.tenant", "config.deployment", "break_glass.read"},
    "ingest": frozenset({"agent.read", "call.create", "call.append"}),
    # Hands keyed card numbers to the payment processor; sees nothing else.
    "payment_operator": frozenset({"payments.handoff"}),
}


class Level(Enum):
    """What a route's authorization is decided on."""

    PUBLIC = "public"  # no authentication at all
    LISTED = "listed"  # tenant listing filtered to what the caller may see; never denied
    TENANT = "tenant"  # the caller's tenant; no id in the request
    TENANT_SUB = "tenant-sub"  # the caller's tenant, for an id of something inside it
    DEPLOYMENT = "deployment"
    AGENT = "agent"
    CALL = "call"
    OPERATOR = "operator"  # the operator realm: a tenant key is never an operator credential


#: The metadata read that decides between 403 and 404 at each level.
VISIBLE = {
    Level.TENANT: "tenant.read",
    Level.TENANT_SUB: "tenant.read",
    Level.DEPLOYMENT: "deployment.read",
    Level.AGENT: "agent.read",
    Level.CALL: "call.read",
}

#: Targets per level: own tenant's deployment 0 resources, deployment 1 resources, the other
#: tenant's. Tenant-level routes have one own target (the tenant); id-less ones no other.
TARGETS = {
    Level.PUBLIC: ("own0",),
    Level.LISTED: ("own0",),
    Level.TENANT: ("own0",),
    Level.TENANT_SUB: ("own0", "other"),
    Level.DEPLOYMENT: ("own0", "own1", "other"),
    Level.AGENT: ("own0", "own1", "other"),
    Level.CALL: ("own0", "own1", "other"),
    Level.OPERATOR: ("own0",),
}


def covers(scope: str, level: Level, target: str) -> bool:
    """Whether a binding at ``scope`` covers the resource ``level``/``target`` is decided on."""
    if scope == "tenant":
        return True
    if level in (Level.TENANT, Level.TENANT_SUB, Level.LISTED):
        return False
    if target != "own0":
        return False
    if level is Level.DEPLOYMENT:
        return scope == "dep0"
    return scope in ("dep0", "agent0")  # agent0 and its calls


@dataclass(frozen=True)
class Ids:
    """The ids a request is built from, for one target."""

    tenant: str
    dep: str
    agent: str
    call: str
    principal: str
    key: str
    tenant_v1: str
    dep_v1: str
    agent_v1: str
    card: str = "tok_" + "a" * 26
    sink: str = "snk_" + "a" * 26
    scim_token: str = "sct_" + "a" * 26
    sso_connection: str = "sso_" + "a" * 26
    break_glass: str = "bgr_" + "a" * 26
    session: str = "ses_" + "a" * 26
    binding: str = "rb_" + "a" * 26


@dataclass(frozen=True)
class Op:
    """One operation of the API as the matrix exercises it."""

    method: str
    template: str  # the OpenAPI path
    level: Level
    needs: tuple[str, ...]  # checked in order; the first refused one decides
    path: Callable[[Ids], str]
    ok: int = 200
    query: Callable[[Ids], dict[str, str]] | None = None
    body: Callable[[Ids], dict[str, Any]] | None = None
    any_of: bool = False  # ``needs`` is a choice (any one suffices), not a sequence
    content: bool = False  # allowed requests read content: an ``allowed`` audit entry each
    fresh: str | None = (
        None  # "call", "principal", "owner", "binding", "sink", "scim_token", ...: new each
    )
    label: str = ""

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}{self.label}"


_SINK_CONFIG = {"url": "https://siem.invalid/hooks/audit"}
_SINK_SECRET = "whsec_" + "m" * 40


def _unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:12]}"


_SEGMENT = {"speaker": "agent", "start_ms": 0, "end_ms": 10, "text": "matrix segment"}

# break-glass, the tenant's side (decided at tenant scope), and the operator realm's routes,
# which no tenant key opens (401 for every role; their own matrix: test_operators_matrix.py)
_BREAK_GLASS_OPS = (
    Op(
        "GET",
        "/v1/tenant/break-glass",
        Level.TENANT,
        ("break_glass.read",),
        lambda _: "/v1/tenant/break-glass",
    ),
    Op(
        "GET",
        "/v1/tenant/break-glass/{grant_id}",
        Level.TENANT_SUB,
        ("break_glass.read",),
        lambda t: f"/v1/tenant/break-glass/{t.break_glass}",
        fresh="break_glass",
    ),
    *(
        Op(
            "POST",
            f"/v1/tenant/break-glass/{{grant_id}}/{verb}",
            Level.TENANT_SUB,
            ("break_glass.approve",),
            lambda t, verb=verb: f"/v1/tenant/break-glass/{t.break_glass}/{verb}",
            fresh="break_glass",
        )
        for verb in ("approve", "deny", "revoke")
    ),
)
_OPERATOR_OPS = tuple(
    Op(
        method,
        template,
        Level.OPERATOR,
        (),
        lambda t, template=template: template.format(
            tenant_id=t.tenant, deployment_id=t.dep, call_id=t.call, grant_id=t.break_glass
        ),
        ok=401,
    )
    for method, template in (
        ("GET", "/v1/operator/me"),
        ("GET", "/v1/operator/tenants"),
        ("GET", "/v1/operator/tenants/{tenant_id}"),
        ("GET", "/v1/operator/tenants/{tenant_id}/deployments"),
        ("GET", "/v1/operator/tenants/{tenant_id}/deployments/{deployment_id}/agents"),
        ("GET", "/v1/operator/tenants/{tenant_id}/calls"),
        ("GET", "/v1/operator/tenants/{tenant_id}/calls/{call_id}"),
        ("GET", "/v1/operator/tenants/{tenant_id}/calls/{call_id}/transcript"),
        ("GET", "/v1/operator/tenants/{tenant_id}/calls/{call_id}/recording"),
        ("POST", "/v1/operator/tenants/{tenant_id}/break-glass"),
        ("GET", "/v1/operator/tenants/{tenant_id}/break-glass"),
        ("POST", "/v1/operator/tenants/{tenant_id}/break-glass/{grant_id}/revoke"),
    )
)


def _break_glass_request(s: Any, rt: Any, ids: Ids) -> str:
    """A pending break-glass request by a new operator, for deployment ``ids.dep``."""
    from callvault import operators  # noqa: PLC0415
    from callvault.operators._break_glass import request  # noqa: PLC0415

    op = operators.create_operator(
        s,
        name=f"mx-{uuid.uuid4().hex[:12]}",
        role=operators.OperatorRole.SUPPORT_ENGINEER,
        created_by="test:matrix",
    )
    row = request(
        s,
        rt.sealer,
        rt.audit,
        operator_id=op.id,
        tenant_id=ids.tenant,
        deployment_id=ids.dep,
        reason="matrix: a support ticket needs a look",
        ticket_ref="MX-1",
        duration=timedelta(minutes=30),
        now=operators.clock_now(),
        actor=operators.Actor(op.id, "operator"),
    )
    return str(row.id)


OPS: tuple[Op, ...] = (
    Op("GET", "/healthz", Level.PUBLIC, (), lambda _: "/healthz"),
    Op("GET", "/readyz", Level.PUBLIC, (), lambda _: "/readyz"),
    # tenant
    Op("GET", "/v1/tenant", Level.TENANT, ("tenant.read",), lambda _: "/v1/tenant"),
    Op(
        "PATCH",
        "/v1/tenant",
        Level.TENANT,
        ("tenant.update",),
        lambda _: "/v1/tenant",
        body=lambda _: {"name": _unique("tenant")},
    ),
    # deployments
    Op("GET", "/v1/deployments", Level.LISTED, (), lambda _: "/v1/deployments"),
    Op(
        "POST",
        "/v1/deployments",
        Level.TENANT,
        ("deployment.create",),
        lambda _: "/v1/deployments",
        ok=201,
        body=lambda _: {"name": _unique("dep"), "region": "eu-west-1"},
    ),
    Op(
        "GET",
        "/v1/deployments/{deployment_id}",
        Level.DEPLOYMENT,
        ("deployment.read",),
        lambda t: f"/v1/deployments/{t.dep}",
    ),
    Op(
        "PATCH",
        "/v1/deployments/{deployment_id}",
        Level.DEPLOYMENT,
        ("deployment.update",),
        lambda t: f"/v1/deployments/{t.dep}",
        body=lambda _: {"name": _unique("dep"), "retention": {"transcripts_days": 30}},
    ),
    Op(
        "GET",
        "/v1/deployments/{deployment_id}/agents",
        Level.DEPLOYMENT,
        ("deployment.read",),
        lambda t: f"/v1/deployments/{t.dep}/agents",
    ),
    Op(
        "POST",
        "/v1/deployments/{deployment_id}/agents",
        Level.DEPLOYMENT,
        ("agent.create",),
        lambda t: f"/v1/deployments/{t.dep}/agents",
        ok=201,
        body=lambda _: {"name": _unique("agent"), "prompt": "matrix prompt"},
    ),
    # a deployment's Twilio auth token (never returned: only whether one is configured)
    Op(
        "GET",
        "/v1/deployments/{deployment_id}/twilio",
        Level.DEPLOYMENT,
        ("deployment.read",),
        lambda t: f"/v1/deployments/{t.dep}/twilio",
    ),
    Op(
        "PUT",
        "/v1/deployments/{deployment_id}/twilio",
        Level.DEPLOYMENT,
        ("deployment.update",),
        lambda t: f"/v1/deployments/{t.dep}/twilio",
        body=lambda _: {"auth_token": secrets.token_hex(16)},
    ),
    Op(
        "DELETE",
        "/v1/deployments/{deployment_id}/twilio",
        Level.DEPLOYMENT,
        ("deployment.update",),
        lambda t: f"/v1/deployments/{t.dep}/twilio",
        ok=204,
    ),
    # agents
    Op(
        "GET",
        "/v1/agents/{agent_id}",
        Level.AGENT,
        ("agent.read",),
        lambda t: f"/v1/agents/{t.agent}",
    ),
    Op(
        "PATCH",
        "/v1/agents/{agent_id}",
        Level.AGENT,
        ("agent.update",),
        lambda t: f"/v1/agents/{t.agent}",
        body=lambda _: {"prompt": _unique("matrix prompt")},
    ),
    Op(
        "GET",
        "/v1/agents/{agent_id}/config",
        Level.AGENT,
        ("agent.config",),
        lambda t: f"/v1/agents/{t.agent}/config",
        content=True,
    ),
    # configuration versions: tenant
    Op(
        "GET",
        "/v1/tenant/versions",
        Level.TENANT,
        ("history.tenant",),
        lambda _: "/v1/tenant/versions",
    ),
    Op(
        "GET",
        "/v1/tenant/versions/diff",
        Level.TENANT_SUB,
        ("config.tenant",),
        lambda _: "/v1/tenant/versions/diff",
        query=lambda t: {"from": t.tenant_v1, "to": t.tenant_v1},
    ),
    Op(
        "GET",
        "/v1/tenant/versions/{version_id}",
        Level.TENANT_SUB,
        ("config.tenant",),
        lambda t: f"/v1/tenant/versions/{t.tenant_v1}",
    ),
    Op(
        "POST",
        "/v1/tenant/versions/{version_id}/revert",
        Level.TENANT_SUB,
        ("tenant.update",),
        lambda t: f"/v1/tenant/versions/{t.tenant_v1}/revert",
        ok=201,
    ),
    # configuration versions: deployments
    Op(
        "GET",
        "/v1/deployments/{id}/versions",
        Level.DEPLOYMENT,
        ("history.deployment",),
        lambda t: f"/v1/deployments/{t.dep}/versions",
    ),
    Op(
        "GET",
        "/v1/deployments/{id}/versions/diff",
        Level.DEPLOYMENT,
        ("config.deployment",),
        lambda t: f"/v1/deployments/{t.dep}/versions/diff",
        query=lambda t: {"from": t.dep_v1, "to": t.dep_v1},
    ),
    Op(
        "GET",
        "/v1/deployments/{id}/versions/{version_id}",
        Level.DEPLOYMENT,
        ("config.deployment",),
        lambda t: f"/v1/deployments/{t.dep}/versions/{t.dep_v1}",
    ),
    Op(
        "POST",
        "/v1/deployments/{id}/versions/{version_id}/revert",
        Level.DEPLOYMENT,
        ("deployment.update",),
        lambda t: f"/v1/deployments/{t.dep}/versions/{t.dep_v1}/revert",
        ok=201,
    ),
    # configuration versions: agents (their content is the prompt: customer content)
    Op(
        "GET",
        "/v1/agents/{id}/versions",
        Level.AGENT,
        ("history.agent",),
        lambda t: f"/v1/agents/{t.agent}/versions",
    ),
    Op(
        "GET",
        "/v1/agents/{id}/versions/diff",
        Level.AGENT,
        ("agent.config",),
        lambda t: f"/v1/agents/{t.agent}/versions/diff",
        query=lambda t: {"from": t.agent_v1, "to": t.agent_v1},
        content=True,
    ),
    Op(
        "GET",
        "/v1/agents/{id}/versions/{version_id}",
        Level.AGENT,
        ("agent.config",),
        lambda t: f"/v1/agents/{t.agent}/versions/{t.agent_v1}",
        content=True,
    ),
    Op(
        "POST",
        "/v1/agents/{id}/versions/{version_id}/revert",
        Level.AGENT,
        ("agent.update",),
        lambda t: f"/v1/agents/{t.agent}/versions/{t.agent_v1}/revert",
        ok=201,
    ),
    # SCIM bearer tokens of the tenant (the SCIM API itself authenticates with them, not keys)
    Op(
        "GET",
        "/v1/tenant/scim-tokens",
        Level.TENANT,
        ("principal.manage",),
        lambda _: "/v1/tenant/scim-tokens",
    ),
    Op(
        "POST",
        "/v1/tenant/scim-tokens",
        Level.TENANT,
        ("principal.manage",),
        lambda _: "/v1/tenant/scim-tokens",
        ok=201,
        body=lambda _: {"label": "okta"},
    ),
    Op(
        "DELETE",
        "/v1/tenant/scim-tokens/{token_id}",
        Level.TENANT,
        ("principal.manage",),
        lambda t: f"/v1/tenant/scim-tokens/{t.scim_token}",
        fresh="scim_token",
    ),
    # SSO connections (the login routes under /sso are public and outside the OpenAPI document)
    Op(
        "GET",
        "/v1/tenant/sso/connections",
        Level.TENANT,
        ("principal.read",),
        lambda _: "/v1/tenant/sso/connections",
    ),
    Op(
        "POST",
        "/v1/tenant/sso/connections",
        Level.TENANT,
        ("principal.manage",),
        lambda _: "/v1/tenant/sso/connections",
        ok=201,
        body=lambda t: {
            "protocol": "oidc",
            "name": _unique("idp"),
            "config": sso_double.config(),
            "role_mappings": [
                {"group": "g", "role": "qa_reviewer", "scope_kind": "deployment", "scope_id": t.dep}
            ],
        },
    ),
    Op(
        "GET",
        "/v1/tenant/sso/connections/{connection_id}",
        Level.TENANT_SUB,
        ("principal.read",),
        lambda t: f"/v1/tenant/sso/connections/{t.sso_connection}",
        fresh="sso_connection",
    ),
    Op(
        "PATCH",
        "/v1/tenant/sso/connections/{connection_id}",
        Level.TENANT_SUB,
        ("principal.manage",),
        lambda t: f"/v1/tenant/sso/connections/{t.sso_connection}",
        body=lambda _: {"enabled": False},
        fresh="sso_connection",
    ),
    Op(
        "DELETE",
        "/v1/tenant/sso/connections/{connection_id}",
        Level.TENANT_SUB,
        ("principal.manage",),
        lambda t: f"/v1/tenant/sso/connections/{t.sso_connection}",
        ok=204,
        fresh="sso_connection",
    ),
    # browser sessions (issue 7): the caller's own session routes answer 401 without a cookie
    Op("GET", "/v1/session", Level.PUBLIC, (), lambda _: "/v1/session", ok=401),
    Op("POST", "/v1/session/logout", Level.PUBLIC, (), lambda _: "/v1/session/logout", ok=401),
    Op(
        "POST",
        "/v1/session/recovery",
        Level.PUBLIC,
        (),
        lambda _: "/v1/session/recovery",
        ok=401,
        body=lambda t: {
            "tenant_id": t.tenant,
            "principal_id": t.principal,
            "code": "AAAAA-AAAAA-AAAAA-AAAAA",
        },
    ),
    Op(
        "GET",
        "/v1/tenant/sessions",
        Level.TENANT,
        ("principal.read",),
        lambda _: "/v1/tenant/sessions",
    ),
    Op(
        "DELETE",
        "/v1/tenant/sessions/{session_id}",
        Level.TENANT_SUB,
        ("principal.manage",),
        lambda t: f"/v1/tenant/sessions/{t.session}",
        ok=204,
        fresh="session",
    ),
    Op(
        "DELETE",
        "/v1/tenant/principals/{principal_id}/sessions",
        Level.TENANT_SUB,
        ("principal.manage",),
        lambda t: f"/v1/tenant/principals/{t.principal}/sessions",
    ),
    Op(
        "GET",
        "/v1/tenant/session-policy",
        Level.TENANT,
        ("tenant.read",),
        lambda _: "/v1/tenant/session-policy",
    ),
    Op(
        "PATCH",
        "/v1/tenant/session-policy",
        Level.TENANT,
        ("tenant.update",),
        lambda _: "/v1/tenant/session-policy",
        body=lambda _: {"idle_timeout_minutes": 25},
    ),
    Op(
        "GET",
        "/v1/tenant/recovery-codes",
        Level.TENANT,
        ("principal.grant_owner",),
        lambda _: "/v1/tenant/recovery-codes",
    ),
    Op(
        "POST",
        "/v1/tenant/recovery-codes",
        Level.TENANT,
        ("principal.grant_owner",),
        lambda _: "/v1/tenant/recovery-codes",
        ok=201,
    ),
    # principals and keys
    Op("GET", "/v1/principals", Level.TENANT, ("principal.read",), lambda _: "/v1/principals"),
    Op(
        "POST",
        "/v1/principals",
        Level.TENANT,
        ("principal.manage",),
        lambda _: "/v1/principals",
        ok=201,
        body=lambda _: {"name": _unique("person"), "kind": "service"},
    ),
    Op(
        "GET",
        "/v1/principals/{principal_id}",
        Level.TENANT_SUB,
        ("principal.read",),
        lambda t: f"/v1/principals/{t.principal}",
    ),
    Op(
        "POST",
        "/v1/principals/{principal_id}/roles",
        Level.TENANT_SUB,
        ("principal.manage",),
        lambda t: f"/v1/principals/{t.principal}/roles",
        ok=201,
        body=lambda t: {"role": "qa_reviewer", "scope": {"kind": "deployment", "id": t.dep}},
        fresh="principal",
        label=" (qa_reviewer)",
    ),
    Op(
        "POST",
        "/v1/principals/{principal_id}/roles",
        Level.TENANT_SUB,
        ("principal.manage", "principal.grant_owner"),
        lambda t: f"/v1/principals/{t.principal}/roles",
        ok=201,
        body=lambda t: {"role": "owner", "scope": {"kind": "tenant", "id": t.tenant}},
        fresh="principal",
        label=" (owner)",
    ),
    Op(
        "POST",
        "/v1/principals/{principal_id}/keys",
        Level.TENANT_SUB,
        ("principal.manage",),
        lambda t: f"/v1/principals/{t.principal}/keys",
        ok=201,
        body=lambda _: {"label": "matrix", "ttl_days": 1},
    ),
    # A key of a principal holding owner acts as an owner. Whether the target holds owner is
    # only known from the caller's own tenant, so the owner variants run on own0 only (the
    # plain variants above and below check the wall).
    Op(
        "POST",
        "/v1/principals/{principal_id}/keys",
        Level.TENANT,
        ("principal.manage", "principal.grant_owner"),
        lambda t: f"/v1/principals/{t.principal}/keys",
        ok=201,
        body=lambda _: {"label": "matrix", "ttl_days": 1},
        fresh="owner",
        label=" (owner)",
    ),
    Op(
        "PATCH",
        "/v1/principals/{principal_id}",
        Level.TENANT_SUB,
        ("principal.manage",),
        lambda t: f"/v1/principals/{t.principal}",
        body=lambda _: {"active": False},
        fresh="principal",
    ),
    Op(
        "PATCH",
        "/v1/principals/{principal_id}",
        Level.TENANT,
        ("principal.manage", "principal.grant_owner"),
        lambda t: f"/v1/principals/{t.principal}",
        body=lambda _: {"active": False},
        fresh="owner",
        label=" (owner)",
    ),
    Op(
        "DELETE",
        "/v1/principals/{principal_id}/roles/{binding_id}",
        Level.TENANT_SUB,
        ("principal.manage",),
        lambda t: f"/v1/principals/{t.principal}/roles/{t.binding}",
        fresh="binding",
    ),
    Op(
        "DELETE",
        "/v1/principals/{principal_id}/roles/{binding_id}",
        Level.TENANT,
        ("principal.manage", "principal.grant_owner"),
        lambda t: f"/v1/principals/{t.principal}/roles/{t.binding}",
        fresh="owner",
        label=" (owner)",
    ),
    Op(
        "DELETE",
        "/v1/keys/{key_id}",
        Level.TENANT_SUB,
        ("principal.manage",),
        lambda t: f"/v1/keys/{t.key}",
    ),
    # calls
    Op("GET", "/v1/calls", Level.TENANT, ("call.list",), lambda _: "/v1/calls"),
    Op(
        "GET",
        "/v1/calls",
        Level.DEPLOYMENT,
        ("call.list",),
        lambda _: "/v1/calls",
        query=lambda t: {"deployment_id": t.dep},
        label="?deployment_id",
    ),
    Op(
        "GET",
        "/v1/calls",
        Level.AGENT,
        ("call.list",),
        lambda _: "/v1/calls",
        query=lambda t: {"agent_id": t.agent},
        label="?agent_id",
    ),
    Op(
        "POST",
        "/v1/agents/{agent_id}/calls",
        Level.AGENT,
        ("call.create",),
        lambda t: f"/v1/agents/{t.agent}/calls",
        ok=201,
        body=lambda _: {"direction": "outbound", "caller_number": "+44 20 7946 0000"},
    ),
    Op("GET", "/v1/calls/{call_id}", Level.CALL, ("call.read",), lambda t: f"/v1/calls/{t.call}"),
    Op(
        "POST",
        "/v1/calls/{call_id}/segments",
        Level.CALL,
        ("call.append",),
        lambda t: f"/v1/calls/{t.call}/segments",
        ok=201,
        body=lambda _: {"segments": [_SEGMENT]},
    ),
    Op(
        "POST",
        "/v1/calls/{call_id}/events",
        Level.CALL,
        ("call.append",),
        lambda t: f"/v1/calls/{t.call}/events",
        ok=201,
        body=lambda _: {"events": [{"kind": "mark", "at_ms": 5}]},
    ),
    Op(
        "POST",
        "/v1/calls/{call_id}/end",
        Level.CALL,
        ("call.append",),
        lambda t: f"/v1/calls/{t.call}/end",
        body=lambda _: {"status": "completed"},
        fresh="call",
    ),
    Op(
        "GET",
        "/v1/calls/{call_id}/transcript",
        Level.CALL,
        ("transcript.full", "transcript.redacted"),
        lambda t: f"/v1/calls/{t.call}/transcript",
        any_of=True,
        content=True,
    ),
    Op(
        "GET",
        "/v1/calls/{call_id}/transcript",
        Level.CALL,
        ("transcript.full",),
        lambda t: f"/v1/calls/{t.call}/transcript",
        query=lambda _: {"view": "full"},
        content=True,
        label="?view=full",
    ),
    Op(
        "GET",
        "/v1/calls/{call_id}/transcript",
        Level.CALL,
        ("transcript.redacted",),
        lambda t: f"/v1/calls/{t.call}/transcript",
        query=lambda _: {"view": "redacted"},
        content=True,
        label="?view=redacted",
    ),
    Op(
        "GET",
        "/v1/calls/{call_id}/recording",
        Level.CALL,
        ("recording.full", "recording.masked"),
        lambda t: f"/v1/calls/{t.call}/recording",
        any_of=True,
        content=True,
    ),
    Op(
        "GET",
        "/v1/calls/{call_id}/recording",
        Level.CALL,
        ("recording.full",),
        lambda t: f"/v1/calls/{t.call}/recording",
        query=lambda _: {"view": "full"},
        content=True,
        label="?view=full",
    ),
    Op(
        "GET",
        "/v1/calls/{call_id}/recording",
        Level.CALL,
        ("recording.masked",),
        lambda t: f"/v1/calls/{t.call}/recording",
        query=lambda _: {"view": "masked"},
        content=True,
        label="?view=masked",
    ),
    Op(
        "POST",
        "/v1/calls/{call_id}/recording/url",
        Level.CALL,
        ("recording.full", "recording.masked"),
        lambda t: f"/v1/calls/{t.call}/recording/url",
        any_of=True,
        content=True,
    ),
    # The signed URL is its own credential: without a valid one, 401 for everyone.
    Op(
        "GET",
        "/v1/playback/{token}",
        Level.PUBLIC,
        (),
        lambda _: "/v1/playback/pb1.e30.AAAA",
        ok=401,
    ),
    # payments
    Op(
        "POST",
        "/v1/payments/tokens/{token_id}/handoff",
        Level.CALL,
        ("payments.handoff",),
        lambda t: f"/v1/payments/tokens/{t.card}/handoff",
        content=True,
    ),
    # audit
    Op("GET", "/v1/audit/entries", Level.TENANT, ("audit.read",), lambda _: "/v1/audit/entries"),
    Op(
        "GET",
        "/v1/audit/checkpoint",
        Level.TENANT,
        ("audit.read",),
        lambda _: "/v1/audit/checkpoint",
    ),
    Op(
        "POST",
        "/v1/audit/checkpoint",
        Level.TENANT,
        ("audit.read",),
        lambda _: "/v1/audit/checkpoint",
    ),
    Op(
        "GET",
        "/v1/audit/proofs/inclusion",
        Level.TENANT,
        ("audit.read",),
        lambda _: "/v1/audit/proofs/inclusion",
        query=lambda _: {"index": "0", "size": "1"},
    ),
    Op(
        "GET",
        "/v1/audit/proofs/consistency",
        Level.TENANT,
        ("audit.read",),
        lambda _: "/v1/audit/proofs/consistency",
        query=lambda _: {"first": "1", "second": "1"},
    ),
    Op("GET", "/v1/audit/log-key", Level.TENANT, ("audit.read",), lambda _: "/v1/audit/log-key"),
    Op("GET", "/v1/audit/sinks", Level.TENANT, ("audit.read",), lambda _: "/v1/audit/sinks"),
    Op(
        "POST",
        "/v1/audit/sinks",
        Level.TENANT,
        ("tenant.update",),
        lambda _: "/v1/audit/sinks",
        ok=201,
        body=lambda _: {
            "kind": "webhook",
            "name": _unique("sink"),
            "config": _SINK_CONFIG,
            "secret": _SINK_SECRET,
        },
    ),
    Op(
        "DELETE",
        "/v1/audit/sinks/{sink_id}",
        Level.TENANT,
        ("tenant.update",),
        lambda t: f"/v1/audit/sinks/{t.sink}",
        ok=204,
        fresh="sink",
    ),
    *_BREAK_GLASS_OPS,
    *_OPERATOR_OPS,
)


def expected_status(op: Op, role: str, scope: str, target: str) -> int:
    """The status the intended policy gives ``role`` bound at ``scope`` for ``op`` on ``target``."""
    if op.level in (Level.PUBLIC, Level.LISTED):
        return op.ok
    if op.level is Level.OPERATOR:
        return 401
    if target == "other" and op.level is not Level.TENANT_SUB:
        return 404  # the resource's scope cannot even be established from another tenant
    # Routes on something inside the caller's own tenant decide on that tenant first; with
    # another tenant's id (or one that exists nowhere) an allowed caller then finds nothing.
    where = "own0" if target == "other" else target
    allowed = ALLOWED[role]
    in_scope = covers(scope, op.level, where)
    checks = [op.needs] if op.any_of else [(need,) for need in op.needs]
    for choice in checks:
        if not (in_scope and any(need in allowed for need in choice)):
            return 403 if in_scope and VISIBLE[op.level] in allowed else 404
    return 404 if target == "other" else op.ok


# -- the installation --------------------------------------------------------------------------


@dataclass
class Env:
    inst: Installation
    targets: dict[str, Ids]  # own0, own1, other: tenant a calling, tenant b the other

    @property
    def client(self) -> Any:
        return self.inst.client

    @property
    def own(self) -> TenantWorld:
        return self.inst.world.a

    @property
    def other(self) -> TenantWorld:
        return self.inst.world.b


def _first_versions(inst: Installation, tw: TenantWorld) -> dict[str, str]:
    rt = inst.rt
    with rt.db.tenant_tx(tw.id) as s:
        out = {"tenant": tenancy.get_tenant(s, tw.id).current_version_id}
        for i in range(2):
            out[f"dep{i}"] = tenancy.get_deployment(s, tw.id, tw.deployments[i]).current_version_id
            out[f"agent{i}"] = tenancy.get_agent(s, tw.id, tw.agents[i]).current_version_id
    assert all(out.values())
    return {k: str(v) for k, v in out.items()}


def _target_principal_and_key(inst: Installation, tw: TenantWorld) -> tuple[str, str]:
    """A principal and an API key that no request authenticates with (keys get revoked)."""
    with inst.rt.db.tenant_tx(tw.id) as s:
        p = access.create_principal(s, tw.id, kind="service", name="matrix-target")
        key = access.issue_key(s, tw.id, p.id, label="target", ttl=timedelta(days=1))
        return p.id, key.id


def _ids(tw: TenantWorld, i: int, versions: dict[str, str], principal: str, key: str) -> Ids:
    return Ids(
        tenant=tw.id,
        dep=tw.deployments[i],
        agent=tw.agents[i],
        call=tw.calls[i],
        principal=principal,
        key=key,
        tenant_v1=versions["tenant"],
        dep_v1=versions[f"dep{i}"],
        agent_v1=versions[f"agent{i}"],
        card=tw.card_tokens[i],
    )


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with matrix_env(tmp_path_factory) as e:
        yield e


@contextmanager
def matrix_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """The populated installation the matrix runs against (also used by
    test_isolation_matrix_principals.py, which adds browser users to it)."""
    data: Path = tmp_path_factory.mktemp("matrix") / "data"
    processor = running_processor(tmp_path_factory.mktemp("processor"))
    with (
        processor as pay,
        installation(
            data,
            payment_connector_url=pay.url,
            payment_connector_secret=SECRET,
            payment_connector_ca_file=pay.ca_file,
            public_base_url="https://cv.example.test",
        ) as inst,
    ):
        inst.client.app.app.state.sso_adapters = sso_double.adapters()  # type: ignore[attr-defined]
        a, b = inst.world.a, inst.world.b
        add_card_tokens(inst.rt, a)
        add_card_tokens(inst.rt, b)
        va, vb = _first_versions(inst, a), _first_versions(inst, b)
        pa, ka = _target_principal_and_key(inst, a)
        pb, kb = _target_principal_and_key(inst, b)
        yield Env(
            inst=inst,
            targets={
                "own0": _ids(a, 0, va, pa, ka),
                "own1": _ids(a, 1, va, pa, ka),
                "other": _ids(b, 0, vb, pb, kb),
            },
        )


def _missing(ids: Ids) -> Ids:
    """Well-formed ids of the same kinds that exist nowhere."""
    return replace(
        ids,
        dep=new_id("dep"),
        agent=new_id("agt"),
        call=new_id("call"),
        principal=new_id("prn"),
        key=new_id("key"),
        tenant_v1=secrets.token_hex(32),
        dep_v1=secrets.token_hex(32),
        agent_v1=secrets.token_hex(32),
        card="tok_" + "b" * 26,
        sso_connection=sso.new_connection_id(),
        break_glass="bgr_" + new_id("prn")[4:],
        session="ses_" + "b" * 26,
        binding=new_id("rb"),
    )


def _fresh(env: Env, op: Op, ids: Ids) -> Ids:  # noqa: PLR0911 - one branch per fresh kind
    """A new call or principal for requests that would otherwise change the shared ones."""
    rt = env.inst.rt
    tenant = ids.tenant
    with rt.db.tenant_tx(tenant) as s:
        if op.fresh == "call":
            agent = tenancy.get_agent(s, tenant, ids.agent)
            row = calls.create_call(
                s,
                rt.sealer,
                rt.audit,
                agent,
                direction="inbound",
                caller_number=None,
                started_at=None,
                actor_id="test:matrix",
                request_id=None,
            )
            return replace(ids, call=row.id)
        if op.fresh == "scim_token":
            issued = scim.issue_scim_token(
                s, tenant, label="fresh", ttl=timedelta(days=1), created_by="test:matrix"
            )
            return replace(ids, scim_token=issued.id)
        if op.fresh == "sso_connection":
            store = sso.ConnectionStore(
                rt.keys, rt.sealer, sso_double.adapters(), rt.settings.public_base_url
            )
            conn = store.create(
                s,
                tenant,
                sso.ConnectionInput(protocol="oidc", name="fresh", config=sso_double.config()),
                actor="test:matrix",
            )
            return replace(ids, sso_connection=conn.id)
        if op.fresh == "break_glass":
            return replace(ids, break_glass=_break_glass_request(s, rt, ids))
        if op.fresh == "session":
            user = access.create_principal(s, tenant, kind="user", name=_unique("browser"))
            opened = sessions.open_session(
                s,
                tenant_id=tenant,
                principal_id=user.id,
                method="oidc",
                connection_id=sso.new_connection_id(),
                now=datetime.now(UTC),
            )
            return replace(ids, session=opened.id)
        if op.fresh == "sink":
            sink = rt.sinks.create(
                s, tenant, kind="webhook", name="fresh", config=_SINK_CONFIG, secret=_SINK_SECRET
            )
            return replace(ids, sink=sink.id)
        p = access.create_principal(s, tenant, kind="user", name=_unique("fresh"))
        if op.fresh in ("owner", "binding"):  # holding owner at tenant scope, or qa_reviewer
            role, kind, scope = (
                (access.Role.OWNER, access.ScopeKind.TENANT, tenant)
                if op.fresh == "owner"
                else (access.Role.QA_REVIEWER, access.ScopeKind.DEPLOYMENT, ids.dep)
            )
            b = access.bind_role(s, tenant, p.id, role, kind, scope, created_by="test:matrix")
            return replace(ids, principal=p.id, binding=b.id)
        return replace(ids, principal=p.id)


#: The credential headers of a request, given its method: a bearer key's are the same for
#: every method; a browser session adds its CSRF token to state changes.
Credentials = Callable[[str], dict[str, str]]


def bearer(token: str) -> Credentials:
    return lambda _method: auth(token)


#: One request of the matrix: (request id, role, scope, target, status, principal id).
Sent = tuple[str, str, str, str, int, str]


def _send(env: Env, op: Op, ids: Ids, creds: Credentials | None) -> tuple[str, httpx.Response]:
    rid = f"mx-{uuid.uuid4().hex}"
    headers = {"X-Request-ID": rid}
    if creds is not None:
        headers.update(creds(op.method))
    resp = env.client.request(
        op.method,
        op.path(ids),
        params=op.query(ids) if op.query else None,
        json=op.body(ids) if op.body else None,
        headers=headers,
    )
    env.client.cookies.clear()  # a reply's Set-Cookie never rides along on the next request
    return rid, resp


def _comparable(resp: httpx.Response) -> tuple[int, str, Any]:
    body: Any = resp.text
    if is_problem(resp):
        body = json.loads(resp.content)
        body.pop("request_id", None)
        body.pop("instance", None)
    return resp.status_code, resp.headers.get("content-type", ""), body


#: Strings that appear only in customer content (transcripts, caller numbers, prompts).
_CONTENT = ("31926819", "twelfth of march", "+44 7700 900123", PROMPT)


def _foreign_ids(env: Env) -> set[str]:
    return _foreign_ids_of(env.other) | {env.targets["other"].principal}


# -- the tests ---------------------------------------------------------------------------------


def test_every_operation_has_a_matrix_entry(env: Env) -> None:
    spec = create_fastapi(env.inst.rt).openapi()["paths"]
    served = {
        f"{method.upper()} {path}"
        for path, item in spec.items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    covered = {f"{op.method} {op.template}" for op in OPS}
    assert served - covered == set(), "routes without an access-matrix entry"
    assert covered - served == set(), "matrix entries for routes the app does not serve"
    assert len({op.key for op in OPS}) == len(OPS)


def test_expectation_table_names_only_known_permissions() -> None:
    used = {need for op in OPS for need in op.needs} | set(VISIBLE.values())
    granted = set().union(*ALLOWED.values())
    assert granted <= used, f"granted but never exercised: {sorted(granted - used)}"
    assert set(ALLOWED) == set(ROLES)


@pytest.mark.parametrize("op", OPS, ids=[op.key for op in OPS])
def test_access_matrix(env: Env, op: Op) -> None:
    rt = env.inst.rt
    own, other = env.own, env.other
    if op.level is Level.PUBLIC:
        _, resp = _send(env, op, env.targets["own0"], None)
        assert resp.status_code == op.ok, resp.text
        return
    own_start, other_start = audit_size(rt, own.id), audit_size(rt, other.id)
    problems: list[str] = []
    sent: list[Sent] = []

    for role in ROLES:
        for scope in SCOPES:
            creds = bearer(own.tokens[(role, scope)])
            for target in TARGETS[op.level]:
                found, done = run_case(
                    env, op, creds, (role, scope, target), own.principals[(role, scope)]
                )
                problems += found
                sent.append(done)

    problems += _check_audit(env, op, sent, own_start, other_start)
    assert not problems, f"{len(problems)} mismatches:\n" + "\n".join(problems)


def run_case(
    env: Env,
    op: Op,
    creds: Credentials,
    who: tuple[str, str, str],
    principal: str,
    label: str = "",
) -> tuple[list[str], Sent]:
    """Send ``op`` as ``who`` (role, scope, target) and check the reply against
    :func:`expected_status`; for another tenant's target, also against ids of nothing."""
    role, scope, target = who
    where = f"{op.key} | {label}{role}@{scope} -> {target}"
    ids = env.targets[target]
    if op.fresh:
        ids = _fresh(env, op, ids)
    rid, resp = _send(env, op, ids, creds)
    want = expected_status(op, role, scope, target)
    problems = _check_reply(env, op, where, resp, want, who)
    if target == "other":
        # No existence leak: another tenant's ids answer like ids of nothing.
        _, nothing = _send(env, op, _missing(ids), creds)
        if _comparable(resp) != _comparable(nothing):
            problems.append(
                f"{where}: differs from a nonexistent id: "
                f"{resp.status_code} {resp.text[:160]} vs "
                f"{nothing.status_code} {nothing.text[:160]}"
            )
    return problems, (rid, role, scope, target, resp.status_code, principal)


def _check_reply(
    env: Env, op: Op, where: str, resp: httpx.Response, want: int, who: tuple[str, str, str]
) -> list[str]:
    """Status, problem shape, no content where none is due, no foreign ids, right views."""
    role, scope, target = who
    got = resp.status_code
    out = []
    if got != want:
        out.append(f"{where}: expected {want}, got {got} {resp.text[:160]}")
    if got >= 400 and not is_problem(resp):
        out.append(f"{where}: {got} is not problem+json")
    if any(m in resp.text for m in _CONTENT) and not (200 <= got < 300 and op.content):
        out.append(f"{where}: content in a non-content reply ({got})")
    if _foreign_ids(env) & set(_strings(resp)):
        out.append(f"{where}: reply holds an id of the other tenant")
    if got == 200 and op.content and "transcript" in op.template:
        out += _check_transcript(where, resp, role)
    if got == 200 and op.template in ("/v1/deployments", "/v1/deployments/{deployment_id}/agents"):
        out += _check_listing(env, op, where, resp, role, scope, target)
    return out


def _strings(resp: httpx.Response) -> Iterator[str]:
    """Every string value of a JSON reply."""
    try:
        doc = resp.json()
    except ValueError:
        return
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _check_transcript(where: str, resp: httpx.Response, role: str) -> list[str]:
    body = resp.json()
    text = " ".join(s["text"] for s in body["segments"])
    full = body["view"] == "full"
    out = []
    if full and "transcript.full" not in ALLOWED[role]:
        out.append(f"{where}: full view served to {role}")
    if full != ("twelfth of march" in text):
        out.append(f"{where}: view {body['view']} and date of birth presence disagree")
    if "4111" in text:
        out.append(f"{where}: a card number reached a stored transcript")
    if full and TRANSCRIPT[1]["text"] not in text:
        out.append(f"{where}: full view lacks the transcript")
    return out


def _check_listing(
    env: Env, op: Op, where: str, resp: httpx.Response, role: str, scope: str, target: str
) -> list[str]:
    """Filtered listings show exactly the world's resources the caller may see."""
    returned = {item["id"] for item in resp.json()}
    own = env.own
    if op.template == "/v1/deployments":
        known = dict(zip(("own0", "own1"), own.deployments, strict=True))
        level, perm = Level.DEPLOYMENT, "deployment.read"
    else:
        known = {target: own.agents[0 if target == "own0" else 1]}
        level, perm = Level.AGENT, "agent.read"
    want = {rid for t, rid in known.items() if perm in ALLOWED[role] and covers(scope, level, t)}
    got = returned & set(known.values())
    return [] if got == want else [f"{where}: listing shows {sorted(got)}, expected {sorted(want)}"]


def _check_audit(
    env: Env,
    op: Op,
    sent: list[Sent],
    own_start: int,
    other_start: int,
    label: str = "",
) -> list[str]:
    rt = env.inst.rt
    by_rid: dict[str, list[dict[str, Any]]] = {}
    for entry in audit_entries(rt, env.own.id, own_start):
        by_rid.setdefault(entry.get("request_id") or "", []).append(entry)
    leaked = {e.get("request_id") for e in audit_entries(rt, env.other.id, other_start)}
    out = []
    for rid, role, scope, target, status, principal in sent:
        where = f"{op.key} | {label}{role}@{scope} -> {target}"
        entries = by_rid.get(rid, [])
        if rid in leaked:
            out.append(f"{where}: audit entry written into the other tenant's log")
        if target == "other":
            continue
        outcomes = {(e["outcome"], e["actor"]) for e in entries}
        if status in (403, 404) and ("denied", principal) not in outcomes:
            out.append(f"{where}: {status} without a 'denied' audit entry")
        if 200 <= status < 300 and op.content and ("allowed", principal) not in outcomes:
            out.append(f"{where}: content read without an 'allowed' audit entry")
    return out


def test_unauthenticated_requests_are_refused_with_problem_json(env: Env) -> None:
    ids = env.targets["own0"]
    problems = []
    for op in OPS:
        if op.level is Level.PUBLIC:
            continue
        _, resp = _send(env, op, ids, None)
        if resp.status_code != 401 or not is_problem(resp):
            problems.append(f"{op.key}: {resp.status_code} {resp.text[:120]}")
        elif "bearer" not in resp.headers.get("www-authenticate", "").lower():
            problems.append(f"{op.key}: 401 without WWW-Authenticate")
    assert not problems, "\n".join(problems)


def test_the_wall_holds_the_other_way(env: Env) -> None:
    """Tenant b's tenant-wide principals of every role, against tenant a's ids: 404 throughout."""
    ids = env.targets["own0"]
    problems = []
    for op in OPS:
        if op.level not in (Level.DEPLOYMENT, Level.AGENT, Level.CALL):
            continue
        for role in ROLES:
            _, resp = _send(env, op, ids, bearer(env.other.tokens[(role, "tenant")]))
            if resp.status_code != 404 or not is_problem(resp):
                problems.append(f"{op.key} | b:{role}: {resp.status_code} {resp.text[:120]}")
            if _foreign_ids_of(env.own) & set(_strings(resp)):
                problems.append(f"{op.key} | b:{role}: reply holds an id of tenant a")
    assert not problems, "\n".join(problems)


def _foreign_ids_of(tw: TenantWorld) -> set[str]:
    return {tw.id, *tw.deployments, *tw.agents, *tw.calls}
