"""SCIM errors (RFC 7644 §3.12): status, ``scimType`` and a detail that quotes nothing sent.

Validation messages of pydantic and scim2-models may quote the offending
value (a filter, an email address, a userName). Only the ``scimType``, a fixed
sentence for it and the *location* of the error in the request (a structural
path such as ``Operations[1].path``) are ever returned; the value never is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from pydantic import ValidationError
from scim2_models import SCIMException

from callvault.errors import Error

ERROR_SCHEMA: Final = "urn:ietf:params:scim:api:messages:2.0:Error"
MEDIA_TYPE: Final = "application/scim+json"

_SENTENCES: Final = {
    "invalidFilter": "the filter is malformed or names an attribute the resource does not have",
    "tooMany": "the filter would return more results than the service evaluates",
    "uniqueness": "a value that must be unique is already in use",
    "mutability": "the request changes an attribute that cannot be changed",
    "invalidSyntax": "the request body is not a valid SCIM message",
    "invalidPath": "the attribute path is malformed or names no attribute",
    "noTarget": "the path filter matches no value",
    "invalidValue": "a value is missing, of the wrong type, or not allowed",
    "invalidVers": "the version is not the current one",
    "sensitive": "the request carries sensitive data where it is not allowed",
}


class ScimError(Error):
    """A SCIM protocol error: answered as a SCIM Error message, never as problem+json."""

    code = "scim"

    def __init__(
        self, status: int, detail: str, *, scim_type: str | None = None, where: str | None = None
    ) -> None:
        super().__init__(detail, field=where)
        self.status = status
        self.scim_type = scim_type

    def body(self) -> bytes:
        doc: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(self.status)}
        if self.scim_type:
            doc["scimType"] = self.scim_type
        doc["detail"] = f"{self.message} (at {self.field})" if self.field else self.message
        return json.dumps(doc, separators=(",", ":")).encode("utf-8")


def bad_request(scim_type: str, *, where: str | None = None) -> ScimError:
    return ScimError(400, _SENTENCES[scim_type], scim_type=scim_type, where=where)


def unauthorized() -> ScimError:
    return ScimError(401, "a valid SCIM bearer token for this tenant is required")


def not_found(what: str = "resource") -> ScimError:
    return ScimError(404, f"{what} not found")


def from_scim_exception(exc: SCIMException, *, where: str | None = None) -> ScimError:
    scim_type = exc.scim_type or None
    if scim_type in _SENTENCES:
        return ScimError(exc.status, _SENTENCES[scim_type], scim_type=scim_type, where=where)
    if exc.status == 404:
        return not_found()
    return ScimError(400, _SENTENCES["invalidValue"], scim_type="invalidValue", where=where)


def _location(loc: Sequence[str | int]) -> str | None:
    """A structural location such as ``Operations[0].path`` (names and indices, no values)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "[" in part or "(" in part or " " in part:
            continue  # pydantic's union-member tags, not attribute names
        else:
            out += f".{part}" if out else part
    return out or None


def from_validation_error(exc: ValidationError) -> ScimError:
    """The first error of a validation, as a SCIM error naming where it is."""
    errors = exc.errors(include_input=False, include_context=True, include_url=False)
    if not errors:  # pragma: no cover - pydantic raises with at least one error
        return bad_request("invalidValue")
    first: Mapping[str, Any] = errors[0]
    loc = tuple(first.get("loc", ()))
    if first.get("type") == "extra_forbidden":
        loc = loc[:-1]  # the unknown attribute's name is the sender's text: name its parent
    where = _location(loc)
    ctx = first.get("ctx") or {}
    scim_type = ctx.get("scim_type") if str(first.get("type", "")).startswith("scim_") else None
    if scim_type in _SENTENCES:
        return ScimError(
            int(ctx.get("status", 400)), _SENTENCES[scim_type], scim_type=scim_type, where=where
        )
    if first.get("type") in {
        "json_invalid",
        "json_type",
        "model_type",
        "dict_type",
    } and not first.get("loc"):
        return bad_request("invalidSyntax")
    if first.get("type") in {"extra_forbidden", "unknown_extension_schema", "schema_error"}:
        return bad_request("invalidSyntax", where=where)
    return bad_request("invalidValue", where=where)
