"""Immutable configuration versions.

A version is an RFC 8785 canonical JSON document::

    {"v": 1, "salt": <128-bit hex>, "tenant", "subject": {"kind", "id"}, "seq",
     "parent": <version id | null>, "actor", "op", "created_at", "content": {...}}

Its id is the SHA-256 of that document. The salt keeps the id from being a
confirmation oracle for guessable content. The document is sealed (it holds
prompts and knowledge-base text); the row keeps only metadata. Opening a
version re-derives the id and checks the subject, so a sealed document moved
to another row is refused.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jsonpatch
import rfc8785
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callvault.crypto import SealContext, Sealer
from callvault.errors import DecryptionError, NotFoundError
from callvault.store.models import ConfigVersion, utcnow

DOC_VERSION = 1
PURPOSE = "config-version"


@dataclass(frozen=True, slots=True)
class VersionInfo:
    id: str
    subject_kind: str
    subject_id: str
    seq: int
    parent_id: str | None
    actor_id: str
    op: str
    created_at: datetime


def _info(row: ConfigVersion) -> VersionInfo:
    return VersionInfo(
        id=row.id,
        subject_kind=row.subject_kind,
        subject_id=row.subject_id,
        seq=row.seq,
        parent_id=row.parent_id,
        actor_id=row.actor_id,
        op=row.op,
        created_at=row.created_at,
    )


def _context(tenant_id: str, deployment_id: str | None, version_id: str) -> SealContext:
    # Each version has a data key of its own (wrapped by the deployment's KEK,
    # or the tenant's for tenant settings).
    return SealContext(
        tenant_id=tenant_id,
        deployment_id=deployment_id,
        purpose=PURPOSE,
        object_id=version_id,
        owner_kind="config-version",
    )


def write_version(
    session: Session,
    sealer: Sealer,
    *,
    tenant_id: str,
    deployment_id: str | None,
    subject_kind: str,
    subject_id: str,
    content: dict[str, Any],
    actor_id: str,
    op: str,
    parent_id: str | None,
) -> VersionInfo:
    """Write a new version of ``subject`` holding ``content``; returns its metadata."""
    seq = (
        session.execute(
            select(func.coalesce(func.max(ConfigVersion.seq), 0)).where(
                ConfigVersion.tenant_id == tenant_id,
                ConfigVersion.subject_kind == subject_kind,
                ConfigVersion.subject_id == subject_id,
            )
        ).scalar_one()
        + 1
    )
    now = utcnow()
    doc: dict[str, Any] = {
        "v": DOC_VERSION,
        "salt": secrets.token_hex(16),
        "tenant": tenant_id,
        "subject": {"kind": subject_kind, "id": subject_id},
        "seq": seq,
        "parent": parent_id,
        "actor": actor_id,
        "op": op,
        "created_at": now.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "content": content,
    }
    raw = rfc8785.dumps(doc)
    version_id = hashlib.sha256(raw).hexdigest()
    row = ConfigVersion(
        id=version_id,
        tenant_id=tenant_id,
        subject_kind=subject_kind,
        subject_id=subject_id,
        seq=seq,
        parent_id=parent_id,
        actor_id=actor_id,
        op=op,
        created_at=now,
        sealed=sealer.seal(session, raw, _context(tenant_id, deployment_id, version_id)),
    )
    session.add(row)
    session.flush()
    return _info(row)


def list_versions(
    session: Session, *, tenant_id: str, subject_kind: str, subject_id: str
) -> list[VersionInfo]:
    rows = session.execute(
        select(ConfigVersion)
        .where(
            ConfigVersion.tenant_id == tenant_id,
            ConfigVersion.subject_kind == subject_kind,
            ConfigVersion.subject_id == subject_id,
        )
        .order_by(ConfigVersion.seq)
    ).scalars()
    return [_info(r) for r in rows]


def get_version_info(
    session: Session, *, tenant_id: str, subject_kind: str, subject_id: str, version_id: str
) -> VersionInfo:
    row = _row(session, tenant_id, subject_kind, subject_id, version_id)
    return _info(row)


def _row(
    session: Session, tenant_id: str, subject_kind: str, subject_id: str, version_id: str
) -> ConfigVersion:
    row = session.execute(
        select(ConfigVersion).where(
            ConfigVersion.id == version_id,
            ConfigVersion.tenant_id == tenant_id,
            ConfigVersion.subject_kind == subject_kind,
            ConfigVersion.subject_id == subject_id,
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFoundError("version not found", field="version_id")
    return row


def read_content(
    session: Session,
    sealer: Sealer,
    *,
    tenant_id: str,
    deployment_id: str | None,
    subject_kind: str,
    subject_id: str,
    version_id: str,
) -> dict[str, Any]:
    """Open a version and return its content, after checking it is what the row says."""
    row = _row(session, tenant_id, subject_kind, subject_id, version_id)
    raw = sealer.open(session, row.sealed, _context(tenant_id, deployment_id, version_id))
    if hashlib.sha256(raw).hexdigest() != version_id:
        raise DecryptionError
    doc = json.loads(raw)
    if (
        doc.get("subject") != {"kind": subject_kind, "id": subject_id}
        or doc.get("tenant") != tenant_id
    ):
        raise DecryptionError
    content: dict[str, Any] = doc["content"]
    return content


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """RFC 6902 JSON Patch turning ``old`` into ``new``."""
    ops: list[dict[str, Any]] = jsonpatch.make_patch(old, new).patch
    return ops
