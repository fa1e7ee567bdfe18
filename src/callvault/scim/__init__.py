"""SCIM 2.0 provisioning (RFC 7643/7644): users and groups pushed by an identity provider.

``/scim/v2/<tenant>`` serves Users, Groups, ServiceProviderConfig,
ResourceTypes and Schemas (:class:`ScimService`), authenticated by per-tenant
SCIM tokens (:func:`issue_scim_token`), never by API keys. A SCIM user is a
principal of kind ``user``; ``active=false`` or deletion revokes its API keys
at once. Profiles are sealed; lookups use HMACs (ADR 13).
"""

from callvault.scim._errors import ScimError
from callvault.scim._service import ScimRequest, ScimResponse, ScimService
from callvault.scim._tokens import (
    IssuedScimToken,
    ScimTokenParts,
    authenticate_scim_token,
    issue_scim_token,
    list_scim_tokens,
    parse_scim_token,
    revoke_scim_token,
)

__all__ = [
    "IssuedScimToken",
    "ScimError",
    "ScimRequest",
    "ScimResponse",
    "ScimService",
    "ScimTokenParts",
    "authenticate_scim_token",
    "issue_scim_token",
    "list_scim_tokens",
    "parse_scim_token",
    "revoke_scim_token",
]
