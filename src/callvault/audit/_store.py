"""The log's rows: entries with their subtree hashes, the head (size, compact range), checkpoints.

Every function runs in the caller's transaction, which MUST be confined to
``tenant_id`` (on PostgreSQL the row-level security policies check it).
Appending takes the tenant's head row lock, so appends to one tenant are
serialised and indices are contiguous, while other tenants append in parallel.
An append writes one row per entry (the entry and the subtree hashes its leaf
completes, see :mod:`callvault.audit.proofs`) in one statement per batch, and
updates the head: a log append is the hottest write callvault makes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, text, update
from sqlalchemy.orm import Session

from callvault.audit.merkle import CompactRange
from callvault.audit.proofs import Node, append_leaves, nodes_from_rows, rows_needed
from callvault.errors import AuditUnavailableError, ProofError
from callvault.store.db import begin_write, insert_for
from callvault.store.models import AuditCheckpoint, AuditEntry, AuditHead
from callvault.store.prepared import Prepared

_ENTRIES = cast("Table", AuditEntry.__table__)
_HEADS = cast("Table", AuditHead.__table__)
_CHECKPOINTS = cast("Table", AuditCheckpoint.__table__)
#: Bind parameters per statement stay well below SQLite's limits.
_ROWS_PER_STATEMENT = 2000
# PostgreSQL: a whole batch in one statement that also moves the head. The
# entries (and their hashes) travel as ONE bytea each plus an int[] of offsets
# and are cut apart on the server: psycopg quotes each element of a bytea[]
# parameter in Python, which cost more than the rest of the append. COPY would
# be faster still, but PostgreSQL refuses COPY FROM under row-level security.
_PG_APPEND = text(
    "WITH o AS (SELECT CAST(:eoff AS integer[]) AS eo, CAST(:hoff AS integer[]) AS ho),"
    " appended AS ("
    " INSERT INTO audit_entries (tenant_id, idx, created_at, entry, hashes)"
    " SELECT :t, :first + i - 1, :at,"
    " substring(CAST(:entries AS bytea) FROM o.eo[i] + 1 FOR o.eo[i + 1] - o.eo[i]),"
    " substring(CAST(:hashes AS bytea) FROM o.ho[i] + 1 FOR o.ho[i + 1] - o.ho[i])"
    " FROM o, generate_series(1, CAST(:n AS integer)) AS i)"
    " UPDATE audit_heads SET size = :size, compact = :compact WHERE tenant_id = :t"
)


def offsets(parts: Sequence[bytes]) -> list[int]:
    """Start of each part in their concatenation, then the total length."""
    out = [0]
    for p in parts:
        out.append(out[-1] + len(p))
    return out


def head_state(size: int, compact: bytes | None) -> CompactRange:
    """The tree state a head row holds, checked; a bad one stops appends (503)."""
    if compact is None:
        if size:
            raise AuditUnavailableError("audit head has no Merkle state")
        return CompactRange()
    try:
        state = CompactRange.from_bytes(bytes(compact))
    except ProofError:
        raise AuditUnavailableError("audit head is malformed") from None
    if state.size != size:
        raise AuditUnavailableError("audit head is inconsistent")
    return state


def lock_head(session: Session, tenant_id: str) -> CompactRange:
    """Lock the tenant's head row (creating it at size 0) and return its state."""
    begin_write(session)  # SQLite: the head is read inside the write transaction
    query = (
        select(_HEADS.c.size, _HEADS.c.compact)
        .where(_HEADS.c.tenant_id == tenant_id)
        .with_for_update()
    )
    row = session.execute(query).first()
    if row is None:
        # Concurrent first appends all get here; one inserts, all then lock it.
        session.execute(
            insert_for(session)(AuditHead)
            .values(tenant_id=tenant_id, size=0, compact=None)
            .on_conflict_do_nothing(index_elements=["tenant_id"])
        )
        row = session.execute(query).one()
    return head_state(int(row.size), row.compact)


def append_locked(
    session: Session,
    tenant_id: str,
    state: CompactRange,
    entries: Sequence[bytes],
    leaves: Sequence[bytes],
    at: datetime,
) -> CompactRange:
    """Write ``entries`` (with their leaf hashes) after ``state``; the head MUST be locked."""
    first = state.size
    new, hashes = append_leaves(state, leaves)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            _PG_APPEND,
            {
                "t": tenant_id,
                "first": first,
                "at": at,
                "n": len(entries),
                "entries": b"".join(entries),
                "eoff": offsets(entries),
                "hashes": b"".join(hashes),
                "hoff": offsets(hashes),
                "size": new.size,
                "compact": new.to_bytes(),
            },
        )
        return new
    rows = [
        {"tenant_id": tenant_id, "idx": first + i, "created_at": at, "entry": e, "hashes": h}
        for i, (e, h) in enumerate(zip(entries, hashes, strict=True))
    ]
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        session.execute(insert(_ENTRIES), rows[start : start + _ROWS_PER_STATEMENT])
    session.execute(
        update(_HEADS)
        .where(_HEADS.c.tenant_id == tenant_id)
        .values(size=new.size, compact=new.to_bytes())
    )
    return new


_HEAD_SIZE = Prepared(
    select(_HEADS.c.size).where(_HEADS.c.tenant_id == bindparam("t")), name="audit_head_size"
)
#: The rows holding a proof's nodes, one prepared statement per number of rows (a proof
#: needs at most ~2 log2(n) rows, so few shapes ever exist).
_NODE_ROWS: dict[int, Prepared] = {}


def head_size(session: Session, tenant_id: str) -> int:
    """The tenant's tree size alone (0 if it has never appended)."""
    row = _HEAD_SIZE.one_or_none(session.connection(), {"t": tenant_id})
    return 0 if row is None else int(row.size)


def _node_rows(n: int) -> Prepared:
    stmt = _NODE_ROWS.get(n)
    if stmt is None:
        stmt = _NODE_ROWS[n] = Prepared(
            select(_ENTRIES.c.idx, _ENTRIES.c.hashes).where(
                _ENTRIES.c.tenant_id == bindparam("t"),
                _ENTRIES.c.idx.in_([bindparam(f"i{k}") for k in range(n)]),
            ),
            name=f"audit_node_rows_{n}",
        )
    return stmt


def head(session: Session, tenant_id: str) -> CompactRange:
    """The tenant's current tree state (size 0 if it has never appended)."""
    row = session.execute(
        select(_HEADS.c.size, _HEADS.c.compact).where(_HEADS.c.tenant_id == tenant_id)
    ).first()
    return CompactRange() if row is None else head_state(int(row.size), row.compact)


def entries(session: Session, tenant_id: str, start: int, limit: int) -> list[tuple[int, bytes]]:
    rows = session.execute(
        select(_ENTRIES.c.idx, _ENTRIES.c.entry)
        .where(_ENTRIES.c.tenant_id == tenant_id, _ENTRIES.c.idx >= start)
        .order_by(_ENTRIES.c.idx)
        .limit(limit)
    ).all()
    return [(int(i), bytes(e)) for i, e in rows]


def nodes(session: Session, tenant_id: str, wanted: Iterable[Node]) -> dict[Node, bytes]:
    """The stored subtree hashes ``wanted`` (one indexed read of the rows that hold them)."""
    wanted = list(wanted)
    if not wanted:
        return {}
    needed = sorted(rows_needed(wanted))
    params: dict[str, Any] = {"t": tenant_id} | {f"i{k}": i for k, i in enumerate(needed)}
    rows = _node_rows(len(needed)).rows(session.connection(), params)
    return nodes_from_rows(wanted, {int(i): bytes(h) for i, h in rows if h is not None})


def latest_checkpoint(session: Session, tenant_id: str) -> tuple[int, bytes] | None:
    """(size, signed note) of the largest checkpoint, if any."""
    row = session.execute(
        select(_CHECKPOINTS.c.size, _CHECKPOINTS.c.note)
        .where(_CHECKPOINTS.c.tenant_id == tenant_id)
        .order_by(_CHECKPOINTS.c.size.desc())
        .limit(1)
    ).first()
    return None if row is None else (int(row.size), bytes(row.note))


def checkpoint_at(session: Session, tenant_id: str, size: int) -> bytes | None:
    return session.execute(
        select(_CHECKPOINTS.c.note).where(
            _CHECKPOINTS.c.tenant_id == tenant_id, _CHECKPOINTS.c.size == size
        )
    ).scalar_one_or_none()


def store_checkpoint(
    session: Session, tenant_id: str, size: int, root: bytes, note: bytes, at: datetime
) -> None:
    """Keep a signed checkpoint (a second one at the same size is not stored)."""
    session.execute(
        insert_for(session)(AuditCheckpoint)
        .values(tenant_id=tenant_id, size=size, root=root, note=note, created_at=at)
        .on_conflict_do_nothing(index_elements=["tenant_id", "size"])
    )
