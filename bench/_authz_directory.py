"""A directory of SCIM-provisioned users and groups for bench/authz.py (issue 7's figure).

Builds an embedded callvault (SQLite in a temporary directory) with one
tenant, provisions ``users`` users and ``groups`` groups through the real SCIM
service (the code path an IdP's provisioning takes: sealed profiles, hashed
lookups, audit entries), puts every user in one to three groups, binds each
user a few roles on the bench's scopes, and loads every user back as a
:class:`Principal` through ``load_principal`` (the request path's lookup).
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from callvault.access import Principal, Role, ScopeKind
from callvault.access._principals import bind_role, load_principal
from callvault.bootstrap import create_tenant_with_owner
from callvault.config import load_settings
from callvault.runtime import Runtime
from callvault.scim import ScimRequest, ScimService
from callvault.scim._tokens import issue_scim_token

_SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
_SCIM_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


@dataclass
class Directory:
    tenant_id: str
    principals: list[Principal]
    groups: int
    memberships: int
    role_bindings: int
    setup_s: float
    load_principal_us: list[float]


def _scim(
    service: ScimService, tenant: str, token: str, method: str, path: str, doc: object
) -> dict[str, object]:
    out = service.handle(
        ScimRequest(
            method=method,
            tenant=tenant,
            path=path,
            query=(),
            body=json.dumps(doc).encode(),
            authorization=f"Bearer {token}",
            base_url=f"https://bench.invalid/scim/v2/{tenant}",
        )
    )
    if out.status not in (200, 201) or out.body is None:
        raise RuntimeError(f"SCIM {method} {path.split('/', maxsplit=1)[0]} answered {out.status}")
    result: dict[str, object] = json.loads(out.body)
    return result


@contextmanager
def directory(
    users: int, groups: int, scopes: Sequence[tuple[ScopeKind, str]], rng: random.Random
) -> Iterator[Directory]:
    """Provision the directory; yield it; remove the temporary installation."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cv-bench-authz-") as tmp:
        rt = Runtime.open(load_settings({}, data_dir=Path(tmp)), create_key=True)
        try:
            init = create_tenant_with_owner(rt, tenant_name="bench", owner_name="bench-owner")
            tenant = init.tenant_id
            with rt.db.tenant_tx(tenant) as s:
                token = issue_scim_token(
                    s, tenant, label="bench", ttl=timedelta(days=1), created_by=init.principal_id
                ).token
            service = ScimService(rt.db, rt.keys, rt.sealer, rt.audit)
            ids: list[str] = []
            for n in range(users):
                doc = {
                    "schemas": [_SCIM_USER],
                    "userName": f"user{n:06d}@bench.invalid",
                    "externalId": f"ext-{n:06d}",
                    "active": True,
                    "name": {"givenName": "Bench", "familyName": f"User{n}"},
                }
                ids.append(str(_scim(service, tenant, token, "POST", "Users", doc)["id"]))
            members: dict[int, list[str]] = {g: [] for g in range(groups)}
            for pid in ids:
                for g in rng.sample(range(groups), rng.randint(1, 3)):
                    members[g].append(pid)
            for g, who in members.items():
                doc = {
                    "schemas": [_SCIM_GROUP],
                    "displayName": f"bench-group-{g:04d}",
                    "members": [{"value": pid} for pid in who],
                }
                _scim(service, tenant, token, "POST", "Groups", doc)
            roles = [r for r in Role if r is not Role.OWNER]
            bindings = 0
            scopes = [(ScopeKind.TENANT, tenant), *scopes]
            with rt.db.tenant_tx(tenant) as s:
                for pid in ids:
                    chosen = {(rng.choice(roles), *rng.choice(scopes)) for _ in range(3)}
                    for role, kind, sid in chosen:
                        bind_role(s, tenant, pid, role, kind, sid, created_by=init.principal_id)
                    bindings += len(chosen)
            setup_s = time.perf_counter() - started
            principals: list[Principal] = []
            load_us: list[float] = []
            conn = rt.db.begin_tenant_connection(tenant)  # as a request's transaction
            with conn:
                for pid in ids:
                    t0 = time.perf_counter_ns()
                    principals.append(load_principal(conn, tenant, pid))
                    load_us.append((time.perf_counter_ns() - t0) / 1000)
            yield Directory(
                tenant_id=tenant,
                principals=principals,
                groups=groups,
                memberships=sum(len(w) for w in members.values()),
                role_bindings=bindings,
                setup_s=round(setup_s, 1),
                load_principal_us=load_us,
            )
        finally:
            rt.close()


def median_p99(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_us": round(statistics.median(ordered), 1),
        "p99_us": round(ordered[int(len(ordered) * 0.99) - 1], 1),
    }
