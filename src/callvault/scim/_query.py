"""Lists and searches: filters, pagination, and the resources a list shows.

A filter is parsed and checked against the published model by scim2-models
(an unknown attribute or a malformed expression is ``invalidFilter``). The
``eq`` filters identity providers send before they create anything
(``userName eq``, ``externalId eq``, ``id eq``; for groups ``displayName eq``)
run in SQL against the HMAC refs (:mod:`callvault.scim._store`). Any other
filter is evaluated by scim2-models on the tenant's resources in memory, up
to :data:`MAX_SCAN` of them (beyond that: ``tooMany``).

Pagination is RFC 7644 §3.4.2.4: ``startIndex`` 1-based (less than 1 reads as
1), ``count`` at most :data:`~callvault.scim._models.MAX_RESULTS`, 0 answering
the total only. Results are in creation order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeVar, cast

from pydantic import ValidationError
from scim2_models import (
    Context,
    ListResponse,
    Meta,
    Resource,
    SCIMException,
    ScimFilter,
    SearchRequest,
)
from scim2_models.path import AttrPath, CompareOperator, Comparison
from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from callvault.scim._errors import (
    ScimError,
    bad_request,
    from_scim_exception,
    from_validation_error,
)
from callvault.scim._models import (
    DEFAULT_COUNT,
    GROUP_SCHEMA,
    MAX_RESULTS,
    USER_SCHEMA,
    Group,
    GroupMember,
    User,
    parametrized,
)
from callvault.scim._store import Attribute, GroupRecord, ScimStore, UserRecord
from callvault.store.models import ScimGroup, ScimUser

#: Most resources a filter is evaluated on in memory.
MAX_SCAN: Final = 10_000

ResourceT = TypeVar("ResourceT", bound=Resource[Any])


def _meta(kind: str, location: str, created: datetime, modified: datetime) -> Meta:
    return Meta(resource_type=kind, created=created, last_modified=modified, location=location)


def user_resource(rec: UserRecord, base: str) -> User:
    return User(
        id=rec.id,
        external_id=rec.external_id,
        user_name=rec.user_name,
        display_name=rec.display_name,
        active=rec.active,
        meta=_meta("User", f"{base}/Users/{rec.id}", rec.created_at, rec.updated_at),
    )


def group_resource(rec: GroupRecord, base: str) -> Group:
    return Group(
        id=rec.id,
        external_id=rec.external_id,
        display_name=rec.display_name,
        members=[GroupMember(value=m, ref=f"{base}/Users/{m}") for m in rec.members] or None,
        meta=_meta("Group", f"{base}/Groups/{rec.id}", rec.created_at, rec.updated_at),
    )


def search_request(model: type[Resource[Any]], data: Mapping[str, Any]) -> SearchRequest[Any]:
    """Read list parameters (a query string or a ``.search`` body) against ``model``."""
    bound: Any = parametrized(SearchRequest, model)  # SearchRequest[model], as a value
    try:
        return cast(
            "SearchRequest[Any]", bound.model_validate(dict(data), scim_ctx=Context.SEARCH_REQUEST)
        )
    except ValidationError as exc:
        raise from_validation_error(exc) from None
    except SCIMException as exc:
        raise from_scim_exception(exc) from None


@dataclass(frozen=True, slots=True)
class Page:
    total: int
    start_index: int
    resources: list[Resource[Any]]


def _window(req: SearchRequest[Any]) -> tuple[int, int]:
    start = max(1, req.start_index or 1)
    count = DEFAULT_COUNT if req.count is None else max(0, min(req.count, MAX_RESULTS))
    return start, count


def _is_text(value: str) -> bool:
    """False for a string holding a lone surrogate (a filter's ``\\ud800`` escape, alone)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _eq_lookup(
    scim_filter: ScimFilter[Any] | None, schema: str, attributes: frozenset[str]
) -> tuple[str, str] | None:
    """(attribute, value) when the filter is one ``attr eq "string"`` on a looked-up attribute."""
    if scim_filter is None:
        return None
    node = scim_filter.ast
    if not isinstance(node, Comparison) or node.op is not CompareOperator.eq:
        return None
    path: AttrPath = node.attr_path
    if path.sub_attr is not None or (
        path.uri is not None and path.uri.casefold() != schema.casefold()
    ):
        return None
    name = next((a for a in attributes if a.casefold() == path.attr.casefold()), None)
    if name is None or not isinstance(node.value, str) or not _is_text(node.value):
        return None  # no stored value holds a lone surrogate: the scan finds none
    return name, node.value


def _page(
    total: int,
    start: int,
    count: int,
    ids: Callable[[int, int], list[str]],
    load: Callable[[list[str]], list[Resource[Any]]],
) -> Page:
    if count == 0 or start > total:
        return Page(total, start, [])
    return Page(total, start, load(ids(start - 1, count)))


def _scan(
    all_ids: list[str],
    load: Callable[[list[str]], list[ResourceT]],
    scim_filter: ScimFilter[Any],
    start: int,
    count: int,
) -> Page:
    if len(all_ids) > MAX_SCAN:
        raise bad_request("tooMany")
    matched: list[Resource[Any]] = []
    for chunk in range(0, len(all_ids), 500):
        matched.extend(r for r in load(all_ids[chunk : chunk + 500]) if scim_filter.match(r))
    return Page(len(matched), start, matched[start - 1 : start - 1 + count] if count else [])


_USER_LOOKUPS: Final = frozenset({"userName", "externalId", "id"})
_GROUP_LOOKUPS: Final = frozenset({"displayName", "externalId", "id"})


def list_users(
    store: ScimStore, s: Session, tenant_id: str, req: SearchRequest[Any], base: str
) -> Page:
    start, count = _window(req)

    def load(ids: list[str]) -> list[User]:
        return [user_resource(u, base) for u in store.users(s, tenant_id, ids)]

    where: list[ColumnElement[bool]] = []
    lookup = _eq_lookup(req.filter, USER_SCHEMA, _USER_LOOKUPS)
    if lookup is not None:
        attribute, value = lookup
        if attribute == "id":
            where.append(ScimUser.principal_id == value)
        elif attribute == "userName":
            where.append(ScimUser.user_name_ref == store.ref(s, tenant_id, "userName", value))
        else:
            where.append(ScimUser.external_id_ref == store.ref(s, tenant_id, "externalId", value))
    elif req.filter is not None:
        return _scan(store.user_ids(s, tenant_id), load, req.filter, start, count)
    total = store.count_users(s, tenant_id, where=where)
    return _page(
        total,
        start,
        count,
        lambda offset, limit: store.user_ids(s, tenant_id, where=where, offset=offset, limit=limit),
        load,  # type: ignore[arg-type]
    )


def list_groups(
    store: ScimStore,
    s: Session,
    tenant_id: str,
    req: SearchRequest[Any],
    base: str,
) -> Page:
    start, count = _window(req)
    # Members are loaded only when they may be shown or filtered on.
    excluded = {str(a).casefold() for a in req.excluded_attributes or []}
    wanted = {str(a).casefold().split(".")[0] for a in req.attributes or []}
    with_members = "members" not in excluded and (
        not wanted or "members" in wanted or req.filter is not None
    )

    def load(ids: list[str]) -> list[Group]:
        return [
            group_resource(g, base)
            for g in store.groups(s, tenant_id, ids, with_members=with_members)
        ]

    where: list[ColumnElement[bool]] = []
    lookup = _eq_lookup(req.filter, GROUP_SCHEMA, _GROUP_LOOKUPS)
    if lookup is not None:
        attribute, value = lookup
        if attribute == "id":
            where.append(ScimGroup.id == value)
        else:
            attr: Attribute = "displayName" if attribute == "displayName" else "externalId"
            column = (
                ScimGroup.display_name_ref if attr == "displayName" else ScimGroup.external_id_ref
            )
            where.append(column == store.ref(s, tenant_id, attr, value))
    elif req.filter is not None:
        return _scan(store.group_ids(s, tenant_id), load, req.filter, start, count)
    total = store.count_groups(s, tenant_id, where=where)
    return _page(
        total,
        start,
        count,
        lambda offset, limit: store.group_ids(
            s, tenant_id, where=where, offset=offset, limit=limit
        ),
        load,  # type: ignore[arg-type]
    )


def search_all(
    store: ScimStore, s: Session, tenant_id: str, req: SearchRequest[Any], base: str
) -> Page:
    """Users and groups together (``POST /.search`` at the root), filtered in memory."""
    start, count = _window(req)
    user_ids, group_ids = store.user_ids(s, tenant_id), store.group_ids(s, tenant_id)
    if len(user_ids) + len(group_ids) > MAX_SCAN:
        raise bad_request("tooMany")
    found: list[Resource[Any]] = []
    for chunk in range(0, len(user_ids), 500):
        found.extend(
            user_resource(u, base) for u in store.users(s, tenant_id, user_ids[chunk : chunk + 500])
        )
    for chunk in range(0, len(group_ids), 500):
        found.extend(
            group_resource(g, base)
            for g in store.groups(s, tenant_id, group_ids[chunk : chunk + 500])
        )
    if req.filter is not None:
        found = [r for r in found if req.filter.match(r)]
    return Page(len(found), start, found[start - 1 : start - 1 + count] if count else [])


def list_response(
    page: Page, req: SearchRequest[Any], models: Sequence[type[Resource[Any]]]
) -> dict[str, Any]:
    """The ListResponse message of a page, with ``attributes``/``excludedAttributes`` applied."""
    model: Any = models[0]
    for other in models[1:]:
        model = model | other
    response = parametrized(ListResponse, model)(
        total_results=page.total,
        start_index=page.start_index,
        items_per_page=len(page.resources),
        resources=page.resources or None,
    )
    try:
        out: dict[str, Any] = response.model_dump(
            scim_ctx=Context.SEARCH_RESPONSE, response_parameters=req
        )
    except SCIMException as exc:
        raise from_scim_exception(exc) from None
    if page.resources == [] and "Resources" not in out:
        out["Resources"] = []
    return out


__all__ = [
    "MAX_SCAN",
    "Page",
    "ScimError",
    "group_resource",
    "list_groups",
    "list_response",
    "list_users",
    "search_request",
    "user_resource",
]
