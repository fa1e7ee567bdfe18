"""The SCIM resources callvault keeps, and how the service describes itself.

callvault keeps little about a provisioned user (ADR 13): ``userName``,
``displayName``, ``externalId`` and ``active``. A group keeps ``displayName``,
``externalId`` and its user ``members``. The published schemas (``/Schemas``)
say exactly that, so a client or a peer suite only ever expects these back.

What an identity provider sends is read against the *standard* models
(``User`` with the enterprise extension, ``Group``), so an attribute the SCIM
core schema defines but callvault does not keep (``name``, ``emails``,
``phoneNumbers``...) is accepted and dropped, while one no schema defines is a
400. Okta and Entra ID send the standard attributes their default mappings
produce; refusing them would break provisioning, keeping them would store
personal data callvault has no use for.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Final, TypeAlias

from pydantic import Field
from scim2_models import (
    URN,
    AuthenticationScheme,
    Bulk,
    CaseExact,
    ChangePassword,
    ComplexAttribute,
    EnterpriseUser,
    ETag,
    Filter,
    Mutability,
    Patch,
    Reference,
    Required,
    Resource,
    ResourceType,
    Schema,
    ScimPolicy,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    Uniqueness,
)
from scim2_models import Group as CoreGroup
from scim2_models import User as CoreUser

USER_SCHEMA: Final = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA: Final = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_SCHEMA: Final = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
#: Schema URNs a request may list (casefolded).
KNOWN_SCHEMAS: Final = frozenset(
    s.casefold() for s in (USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE_SCHEMA)
)

#: Largest page a list or search answers (``filter.maxResults``).
MAX_RESULTS: Final = 200
#: Page size when the client asks for none.
DEFAULT_COUNT: Final = 100
#: Longest userName, displayName or externalId kept (characters).
MAX_VALUE_CHARS: Final = 256
#: Most members one group may have.
MAX_MEMBERS: Final = 10_000


class User(Resource[Any]):
    """User Account"""

    __schema__ = URN(USER_SCHEMA)

    user_name: Annotated[str | None, Uniqueness.server, Required.true] = None
    """Unique identifier for the User, as the identity provider knows them."""

    display_name: str | None = None
    """The name of the User, suitable for display to end-users."""

    active: bool | None = None
    """The User's administrative status: false revokes every credential at once."""


class GroupMember(ComplexAttribute):
    value: Annotated[str | None, Mutability.immutable, CaseExact.true] = None
    """Identifier of a User member of this Group."""

    ref: Annotated[Reference[User] | None, Mutability.immutable] = Field(
        None, serialization_alias="$ref", validation_alias="$ref"
    )
    """The URI of the member User."""


class Group(Resource[Any]):
    """Group"""

    __schema__ = URN(GROUP_SCHEMA)

    display_name: Annotated[str | None, Required.true] = None
    """A human-readable name for the Group."""

    members: list[GroupMember] | None = None
    """The Users in this Group."""


#: What requests are read against: the standard resources, so standard attributes
#: callvault does not keep are accepted (and dropped) and unknown ones refused.
InUser: TypeAlias = CoreUser[EnterpriseUser]
InGroup: TypeAlias = CoreGroup

#: Strict on unknown attributes; the two tolerances Entra ID needs (a ``remove``
#: carrying the values to remove, and ``replace`` on ``emails[type eq "work"]`` of
#: a user without one), neither of which can confuse one request with another.
POLICY: Final = ScimPolicy(
    unknown=ScimPolicy.Unknown.forbid,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)

CONFIG: Final = ServiceProviderConfig(
    patch=Patch(supported=True),
    bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
    filter=Filter(supported=True, max_results=MAX_RESULTS),
    change_password=ChangePassword(supported=False),
    sort=Sort(supported=False),
    etag=ETag(supported=False),
    authentication_schemes=[
        AuthenticationScheme(
            type=AuthenticationScheme.Type.oauthbearertoken,
            name="Bearer token",
            description="A per-tenant SCIM token created by a tenant owner or admin",
            primary=True,
        )
    ],
)

PROVIDER: Final = ScimProvider(models=[User, Group], config=CONFIG)


def schemas() -> tuple[Schema, ...]:
    return PROVIDER.schemas


def resource_types() -> tuple[ResourceType, ...]:
    return PROVIDER.resource_types


@cache
def parametrized(generic: Any, model: Any) -> Any:
    """``generic[model]`` (``PatchOp[User]``, ``SearchRequest[User | Group]``...), built once.

    pydantic caches parametrized models weakly, so without a reference kept
    here each request rebuilt its message classes (some milliseconds each).
    """
    return generic.__class_getitem__(model)
