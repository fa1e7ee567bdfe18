"""One SCIM request, from bearer token to SCIM response, in one tenant transaction.

Steps of :meth:`ScimService.handle`:

1. Parse the bearer token (``cvscim1.<tenant>.<id>.<secret>``). Missing,
   malformed, or naming a tenant other than the path's: 401.
2. Open the token's tenant transaction and authenticate the token in it
   (revoked, expired, unknown or wrong secret: 401). A failure naming a real
   tenant is an audit event with the token id, committed on its own.
3. Route by method and path (unknown path: 404; known path, other method: 405).
4. Run the operation. A change appends its audit entry in the same
   transaction, last, so the change and its entry commit together or not at all.
5. Any error rolls the whole transaction back: nothing of a refused request is
   applied. Errors leave as SCIM Error messages (RFC 7644 §3.12) that name a
   rule and a location, never a submitted value; an unexpected exception is
   logged by type only and answered 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from scim2_models import Context, Meta, Resource, ResourceType, Schema
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from callvault.access import RoleRevocation
from callvault.audit import AuditEvent, AuditLog, Outcome
from callvault.audit._entry import OCSF_ACCOUNT_CHANGE, OCSF_AUTHENTICATION
from callvault.crypto import Sealer
from callvault.errors import (
    AuthenticationError,
    DecryptionError,
    KeyUnavailableError,
    UnavailableError,
)
from callvault.keys import KeyHierarchy
from callvault.scim import _groups, _left, _query, _users
from callvault.scim._errors import MEDIA_TYPE, ScimError, bad_request, not_found, unauthorized
from callvault.scim._left import GroupsLeftHook
from callvault.scim._models import CONFIG, Group, User, resource_types, schemas
from callvault.scim._parse import json_object
from callvault.scim._store import ScimStore
from callvault.scim._tokens import ScimTokenParts, authenticate_scim_token, parse_scim_token
from callvault.store import Database
from callvault.store.ids import is_id
from callvault.store.models import Tenant

log = logging.getLogger("callvault.scim")

#: Most members named in one audit entry (the counts are always whole).
AUDIT_MAX_IDS: Final = 100
#: The query parameters of a list (RFC 7644 §3.4.2), the names an error may give.
_LIST_PARAMETERS: Final = frozenset(
    {"filter", "startIndex", "count", "attributes", "excludedAttributes"}
)


@dataclass(frozen=True, slots=True)
class ScimRequest:
    method: str
    tenant: str
    #: The path after ``/scim/v2/<tenant>``, e.g. ``Users/prn_…``.
    path: str
    query: Sequence[tuple[str, str]]
    body: bytes
    authorization: str | None
    #: The absolute URL of ``/scim/v2/<tenant>``, for ``meta.location``.
    base_url: str
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class ScimResponse:
    status: int
    body: bytes | None
    location: str | None = None
    media_type: str = MEDIA_TYPE


def _json(doc: dict[str, Any], status: int = 200, location: str | None = None) -> ScimResponse:
    import json  # noqa: PLC0415 - tiny, and keeps the module's import block about SCIM

    return ScimResponse(status, json.dumps(doc, separators=(",", ":")).encode("utf-8"), location)


def _error(exc: ScimError) -> ScimResponse:
    return ScimResponse(exc.status, exc.body())


@dataclass(frozen=True, slots=True)
class _Op:
    s: Session
    tenant_id: str
    token_id: str
    req: ScimRequest


_ROUTES: Final = {
    ("ServiceProviderConfig",): frozenset({"GET"}),
    ("ResourceTypes",): frozenset({"GET"}),
    ("ResourceTypes", "*"): frozenset({"GET"}),
    ("Schemas",): frozenset({"GET"}),
    ("Schemas", "*"): frozenset({"GET"}),
    (".search",): frozenset({"POST"}),
    ("Users",): frozenset({"GET", "POST"}),
    ("Users", ".search"): frozenset({"POST"}),
    ("Users", "*"): frozenset({"GET", "PUT", "PATCH", "DELETE"}),
    ("Groups",): frozenset({"GET", "POST"}),
    ("Groups", ".search"): frozenset({"POST"}),
    ("Groups", "*"): frozenset({"GET", "PUT", "PATCH", "DELETE"}),
}


def _route(segments: Sequence[str]) -> tuple[str, ...] | None:
    if tuple(segments) in _ROUTES:
        return tuple(segments)
    if len(segments) == 2 and (segments[0], "*") in _ROUTES:
        return (segments[0], "*")
    return None


class ScimService:
    def __init__(
        self,
        db: Database,
        keys: KeyHierarchy,
        sealer: Sealer,
        audit: AuditLog,
        *,
        groups_left: GroupsLeftHook | None = None,
    ) -> None:
        """``groups_left`` takes back roles granted for groups users left (the API passes
        ``callvault.sso.ScimGroupRevoker``); without it group changes touch no binding."""
        self._db = db
        self._audit = audit
        self._store = ScimStore(keys, sealer)
        self._groups_left = groups_left

    # -- entry ---------------------------------------------------------------

    def handle(self, req: ScimRequest) -> ScimResponse:
        try:
            return self._handle(req)
        except ScimError as exc:
            return _error(exc)
        except IntegrityError:
            # Two requests raced for one userName: the unique ref refused the second.
            return _error(
                ScimError(
                    409, "a value that must be unique is already in use", scim_type="uniqueness"
                )
            )
        except (UnavailableError, KeyUnavailableError, SQLAlchemyError) as exc:
            log.error("scim request %s unavailable: %s", req.request_id, type(exc).__name__)
            return _error(ScimError(503, "service unavailable, nothing was changed"))
        except DecryptionError:
            log.error("scim request %s: a stored profile did not open", req.request_id)
            return _error(ScimError(500, "stored data could not be opened"))
        except Exception as exc:  # noqa: BLE001 - answer in SCIM form; never a message that may quote content
            log.error("scim request %s failed: %s", req.request_id, type(exc).__name__)
            return _error(ScimError(500, "internal error, nothing was changed"))

    def _handle(self, req: ScimRequest) -> ScimResponse:
        # (1)
        parts = self._parts(req)
        route = _route([p for p in req.path.split("/") if p])
        # (2)
        try:
            with self._db.tenant_tx(parts.tenant_id) as s:
                token_id = authenticate_scim_token(s, parts)
                # (3)
                if route is None:
                    raise not_found("endpoint")
                if req.method not in _ROUTES[route]:
                    raise ScimError(405, "method not allowed on this endpoint")
                # (4)
                return self._dispatch(route, _Op(s, parts.tenant_id, token_id, req))
        except AuthenticationError:
            self._audit_failed_authentication(parts, req.request_id)
            raise unauthorized() from None

    def _parts(self, req: ScimRequest) -> ScimTokenParts:
        header = req.authorization or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized()
        try:
            parts = parse_scim_token(token.strip())
        except AuthenticationError:
            raise unauthorized() from None
        if parts.tenant_id != req.tenant:
            self._audit_failed_authentication(parts, req.request_id)
            raise unauthorized()
        return parts

    def _audit_failed_authentication(self, parts: ScimTokenParts, request_id: str | None) -> None:
        with self._db.tenant_tx(parts.tenant_id) as probe:
            known = probe.get(Tenant, parts.tenant_id) is not None
        if known:
            self._audit.append(
                parts.tenant_id,
                AuditEvent(
                    action="authn.scim_token",
                    outcome=Outcome.FAILURE,
                    actor="anonymous",
                    resource_kind="scim_token",
                    resource_id=parts.token_id,
                    request_id=request_id,
                    ocsf_class=OCSF_AUTHENTICATION,
                ),
            )

    # -- routing -------------------------------------------------------------

    def _dispatch(self, route: tuple[str, ...], op: _Op) -> ScimResponse:
        handlers: dict[str, Callable[[_Op, tuple[str, ...]], ScimResponse]] = {
            "ServiceProviderConfig": self._config,
            "ResourceTypes": self._resource_types,
            "Schemas": self._schemas,
            ".search": self._search_all,
            "Users": self._user_route,
            "Groups": self._group_route,
        }
        return handlers[route[0]](op, route)

    def _segment(self, op: _Op) -> str:
        return [p for p in op.req.path.split("/") if p][1]

    # -- discovery -------------------------------------------------------------

    def _config(self, op: _Op, _route: tuple[str, ...]) -> ScimResponse:
        doc = CONFIG.model_copy(
            update={
                "meta": Meta(
                    resource_type="ServiceProviderConfig",
                    location=f"{op.req.base_url}/ServiceProviderConfig",
                )
            }
        ).model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        return _json(doc)

    def _discovery(
        self,
        op: _Op,
        route: tuple[str, ...],
        items: Sequence[Resource[Any]],
        kind: str,
        endpoint: str,
        key: Callable[[Any], str],
    ) -> ScimResponse:
        located = [
            item.model_copy(
                update={
                    "meta": Meta(
                        resource_type=kind, location=f"{op.req.base_url}/{endpoint}/{key(item)}"
                    )
                }
            )
            for item in items
        ]
        if len(route) == 2:
            wanted = self._segment(op)
            for item in located:
                if key(item) == wanted:
                    return _json(item.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))
            raise not_found(kind)
        if any(name == "filter" for name, _ in op.req.query):
            # RFC 7644 §4: a filter on a discovery endpoint is refused, not ignored.
            raise ScimError(403, "discovery endpoints do not filter")
        docs = [item.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE) for item in located]
        return _json(
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                "totalResults": len(docs),
                "startIndex": 1,
                "itemsPerPage": len(docs),
                "Resources": docs,
            }
        )

    def _resource_types(self, op: _Op, route: tuple[str, ...]) -> ScimResponse:
        def key(item: ResourceType) -> str:
            return str(item.id)

        return self._discovery(op, route, resource_types(), "ResourceType", "ResourceTypes", key)

    def _schemas(self, op: _Op, route: tuple[str, ...]) -> ScimResponse:
        def key(item: Schema) -> str:
            return str(item.id)

        return self._discovery(op, route, schemas(), "Schema", "Schemas", key)

    # -- lists -----------------------------------------------------------------

    def _query_params(self, op: _Op) -> dict[str, str]:
        params: dict[str, str] = {}
        for name, value in op.req.query:
            where = name if name in _LIST_PARAMETERS else None  # never quote a name sent
            if name in params:
                raise bad_request("invalidValue", where=where)
            params[name] = value
        # Sorting is not offered (ServiceProviderConfig says so): dropped, not refused.
        params.pop("sortBy", None)
        params.pop("sortOrder", None)
        return params

    def _list(self, op: _Op, model: type[Resource[Any]], data: dict[str, Any]) -> ScimResponse:
        req = _query.search_request(model, data)
        if model is User:
            page = _query.list_users(self._store, op.s, op.tenant_id, req, op.req.base_url)
        else:
            page = _query.list_groups(self._store, op.s, op.tenant_id, req, op.req.base_url)
        return _json(_query.list_response(page, req, [model]))

    def _search_body(self, op: _Op) -> dict[str, Any]:
        doc = json_object(op.req.body)
        doc.pop("sortBy", None)
        doc.pop("sortOrder", None)
        return doc

    def _search_all(self, op: _Op, _route: tuple[str, ...]) -> ScimResponse:
        """``POST /.search``: users then groups (each in creation order), one page over both."""
        req = _query.search_request(User | Group, self._search_body(op))  # type: ignore[arg-type]
        page = _query.search_all(self._store, op.s, op.tenant_id, req, op.req.base_url)
        return _json(_query.list_response(page, req, [User, Group]))

    # -- users -----------------------------------------------------------------

    def _user_route(self, op: _Op, route: tuple[str, ...]) -> ScimResponse:
        store, s, t, base, method = self._store, op.s, op.tenant_id, op.req.base_url, op.req.method
        if route == ("Users",) and method == "GET":
            return self._list(op, User, self._query_params(op))
        if route == ("Users", ".search"):
            return self._list(op, User, self._search_body(op))
        if route == ("Users",):  # POST
            change = _users.create_user(store, s, t, json_object(op.req.body))
            self._audit_user(op, "scim.user.create", change)
            return self._user_out(change.user, base, 201)
        user_id = self._segment(op)
        if not is_id(user_id, "prn"):
            raise not_found("User")
        if method == "GET":
            rec = store.user(s, t, user_id)
            if rec is None:
                raise not_found("User")
            return self._user_out(rec, base, 200, op)
        if method == "DELETE":
            change = _users.delete_user(store, s, t, user_id)
            self._audit_user(op, "scim.user.delete", change)
            return ScimResponse(204, None)
        body = json_object(op.req.body)
        if method == "PUT":
            change = _users.replace_user(store, s, t, user_id, body)
            self._audit_user(op, "scim.user.replace", change)
        else:
            change = _users.patch_user(store, s, t, user_id, body)
            self._audit_user(op, "scim.user.patch", change)
        return self._user_out(change.user, base, 200)

    def _user_out(self, rec: Any, base: str, status: int, op: _Op | None = None) -> ScimResponse:
        resource = _query.user_resource(rec, base)
        return self._resource_out(resource, status, op)

    def _resource_out(self, resource: Resource[Any], status: int, op: _Op | None) -> ScimResponse:
        params = None
        if op is not None:
            data = self._query_params(op)
            params = _query.search_request(
                type(resource),
                {k: v for k, v in data.items() if k in {"attributes", "excludedAttributes"}},
            )
        ctx = (
            Context.RESOURCE_CREATION_RESPONSE if status == 201 else Context.RESOURCE_QUERY_RESPONSE
        )
        doc = resource.model_dump(scim_ctx=ctx, response_parameters=params)
        location = resource.meta.location if resource.meta else None
        return _json(doc, status, location if status == 201 else None)

    def _audit_user(self, op: _Op, action: str, change: _users.UserChange) -> None:
        if not change.changed:
            return  # a request that changed nothing is no change
        detail: dict[str, Any] = {"token": op.token_id, "changed": list(change.changed)}
        if change.keys_revoked:
            detail["keys_revoked"] = list(change.keys_revoked[:AUDIT_MAX_IDS])
            detail["keys_revoked_count"] = len(change.keys_revoked)
        if change.sessions_revoked:
            detail["sessions_revoked"] = change.sessions_revoked
        if change.memberships_removed:
            detail["memberships_removed"] = change.memberships_removed
        if "active" in change.changed or action.endswith(".create"):
            detail["active"] = change.user.active is True and action != "scim.user.delete"
        self._append(op, action, "principal", change.user.id, detail)

    # -- groups ----------------------------------------------------------------

    def _group_route(self, op: _Op, route: tuple[str, ...]) -> ScimResponse:
        store, s, t, base, method = self._store, op.s, op.tenant_id, op.req.base_url, op.req.method
        if route == ("Groups",) and method == "GET":
            return self._list(op, Group, self._query_params(op))
        if route == ("Groups", ".search"):
            return self._list(op, Group, self._search_body(op))
        if route == ("Groups",):  # POST
            change = _groups.create_group(store, s, t, json_object(op.req.body))
            self._audit_group(op, "scim.group.create", change)
            return self._resource_out(_query.group_resource(change.group, base), 201, None)
        group_id = self._segment(op)
        if not is_id(group_id, "grp"):
            raise not_found("Group")
        if method == "GET":
            found = store.groups(s, t, [group_id])
            if not found:
                raise not_found("Group")
            return self._resource_out(_query.group_resource(found[0], base), 200, op)
        if method == "DELETE":
            change = _groups.delete_group(store, s, t, group_id)
            self._audit_group(op, "scim.group.delete", change)
            return ScimResponse(204, None)
        body = json_object(op.req.body)
        if method == "PUT":
            change = _groups.replace_group(store, s, t, group_id, body)
            self._audit_group(op, "scim.group.replace", change)
        else:
            change = _groups.patch_group(store, s, t, group_id, body)
            self._audit_group(op, "scim.group.patch", change)
        return self._resource_out(_query.group_resource(change.group, base), 200, None)

    def _audit_group(self, op: _Op, action: str, change: _groups.GroupChange) -> None:
        if not change.changed:
            return
        revoked = self._revoke_left(op, change)
        detail: dict[str, Any] = {"token": op.token_id, "changed": list(change.changed)}
        for name, ids in (("members_added", change.added), ("members_removed", change.removed)):
            if ids:
                detail[name] = list(ids[:AUDIT_MAX_IDS])
                detail[f"{name}_count"] = len(ids)
        if revoked:
            detail["roles_revoked_count"] = len(revoked)
        self._append(op, action, "scim_group", change.group.id, detail)
        for r in revoked:
            self._append(
                op,
                "principal.unbind_role",
                "principal",
                r.principal_id,
                {
                    "binding": r.binding_id,
                    "role": r.role,
                    "scope_kind": r.scope_kind,
                    "scope": r.scope_id,
                    "source": "scim-group",
                    "connection": r.connection_id,
                    "group": change.group.id,
                    "token": op.token_id,
                },
            )

    def _revoke_left(self, op: _Op, change: _groups.GroupChange) -> Sequence[RoleRevocation]:
        """Roles an SSO connection granted for the groups this change took users out of."""
        if self._groups_left is None:
            return ()
        left = _left.groups_left(change)
        if not left:
            return ()
        kept = _left.kept_names(self._store, op.s, op.tenant_id)
        return self._groups_left(op.s, op.tenant_id, left, kept)

    def _append(self, op: _Op, action: str, kind: str, id_: str, detail: dict[str, Any]) -> None:
        self._audit.append_in(
            op.s,
            op.tenant_id,
            AuditEvent(
                action=action,
                outcome=Outcome.SUCCESS,
                actor=op.token_id,
                resource_kind=kind,
                resource_id=id_,
                request_id=op.req.request_id,
                ocsf_class=OCSF_ACCOUNT_CHANGE,
                detail=detail,
            ),
        )
