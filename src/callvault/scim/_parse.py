"""Request bodies: JSON, then a scim2-models message read under callvault's policy."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import ValidationError
from scim2_models import BaseModel, Context, PatchOp, Resource, SCIMException

from callvault.scim._errors import (
    ScimError,
    bad_request,
    from_scim_exception,
    from_validation_error,
)
from callvault.scim._models import KNOWN_SCHEMAS, MAX_VALUE_CHARS, POLICY, parametrized

M = TypeVar("M", bound=BaseModel)


def json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or ``invalidSyntax``."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise bad_request("invalidSyntax") from None
    if not isinstance(doc, dict):
        raise bad_request("invalidSyntax")
    try:  # a lone surrogate (the JSON escape \ud800 alone) is not text: refuse, do not crash later
        json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):
        raise bad_request("invalidSyntax") from None
    return doc


def _without_bare_unknown_schemas(doc: dict[str, Any]) -> dict[str, Any]:
    """Drop from ``schemas`` the URNs no model knows *and* under which nothing is sent.

    Entra ID lists a schema of its own in ``schemas`` when it creates a group,
    with no attribute under it. A URN that does carry attributes stays, and
    the validation refuses it as the unknown extension it is.
    """
    listed = doc.get("schemas")
    if not isinstance(listed, list):
        return doc
    keys = {str(k).casefold() for k in doc}
    kept = [
        urn
        for urn in listed
        if not isinstance(urn, str) or urn.casefold() in KNOWN_SCHEMAS or urn.casefold() in keys
    ]
    return {**doc, "schemas": kept}


def read(model: type[M], doc: dict[str, Any], ctx: Context) -> M:
    """``doc`` as ``model`` in ``ctx``; every failure is a SCIM 400 naming where it is."""
    if ctx is not Context.RESOURCE_PATCH_REQUEST:
        doc = _without_bare_unknown_schemas(doc)
    try:
        return model.model_validate(doc, scim_ctx=ctx, scim_policy=POLICY)
    except ValidationError as exc:
        raise from_validation_error(exc) from None
    except SCIMException as exc:
        raise from_scim_exception(exc) from None


def read_patch(resource: type[Resource[Any]], doc: dict[str, Any]) -> PatchOp[Any]:
    patch_model: type[PatchOp[Any]] = parametrized(PatchOp, resource)
    return read(patch_model, doc, Context.RESOURCE_PATCH_REQUEST)


def apply_patch(patch: PatchOp[Any], target: Resource[Any]) -> None:
    """Apply every operation to ``target`` or none (scim2-models restores it on failure)."""
    try:
        patch.patch(target, scim_policy=POLICY)
    except ValidationError as exc:
        raise from_validation_error(exc) from None
    except SCIMException as exc:
        raise from_scim_exception(exc) from None


def replace_checked(new: Resource[Any], original: Resource[Any]) -> None:
    """PUT semantics (RFC 7644 §3.5.1): immutable values kept, read-only ones copied."""
    try:
        new.replace(original)
    except SCIMException as exc:
        raise from_scim_exception(exc) from None


def bounded(value: str | None, attribute: str, *, required: bool = False) -> str | None:
    """A kept string: at most :data:`MAX_VALUE_CHARS`, not blank when required."""
    if value is None:
        if required:
            raise bad_request("invalidValue", where=attribute)
        return None
    if len(value) > MAX_VALUE_CHARS or (required and not value.strip()):
        raise bad_request("invalidValue", where=attribute)
    return value


__all__ = ["ScimError", "apply_patch", "bounded", "json_object", "read", "read_patch"]
