"""The stored log: Merkle state, proofs, checkpoints, group commit and failing closed (SQLite)."""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import select, text

from callvault.audit import AuditEvent, Outcome, merkle
from callvault.audit.checkpoint import Checkpoint
from callvault.audit.note import Verifier, open_note
from callvault.audit.verify import verify_checkpoint
from callvault.config import load_settings
from callvault.errors import AuditUnavailableError, NoteError, ProofError
from callvault.runtime import Runtime
from callvault.store.models import AuditCheckpoint, AuditEntry, AuditHead
from tests.support.world import World


def _event(actor: str = "prn_test", n: int = 0) -> AuditEvent:
    return AuditEvent("test.append", Outcome.SUCCESS, actor, "tenant", f"r{n}")


def _all_entries(rt: Runtime, tenant: str) -> list[bytes]:
    with rt.db.tenant_tx(tenant) as s:
        rows = rt.audit.read(s, tenant, start=0, limit=1_000_000)
    assert [i for i, _ in rows] == list(range(len(rows)))
    return [e for _, e in rows]


def _verifier(rt: Runtime, tenant: str) -> Verifier:
    with rt.db.tenant_tx(tenant) as s:
        _origin, vkey = rt.audit.keys.public(s, tenant)
    return Verifier.from_key_string(vkey)


def test_the_signed_checkpoint_commits_to_every_stored_entry(rt: Runtime, world: World) -> None:
    tenant = world.a.id
    rt.audit.append(tenant, *(_event(n=i) for i in range(10)))
    signed = rt.audit.checkpoint(tenant)
    entries = _all_entries(rt, tenant)
    cp = verify_checkpoint(signed.note, _verifier(rt, tenant), origin=signed.checkpoint.origin)
    assert cp.size == len(entries)
    assert cp.root_hash == merkle.root([merkle.leaf_hash(e) for e in entries])
    assert cp.origin == f"callvault.localhost/audit/{tenant}"


def test_each_tenant_signs_with_its_own_key(rt: Runtime, world: World) -> None:
    note_a = rt.audit.checkpoint(world.a.id).note
    with pytest.raises(NoteError):
        open_note(note_a, [_verifier(rt, world.b.id)])
    assert _verifier(rt, world.a.id).key_string() != _verifier(rt, world.b.id).key_string()


def test_a_checkpoint_at_an_unchanged_size_is_reused(rt: Runtime, world: World) -> None:
    first = rt.audit.checkpoint(world.a.id)
    assert rt.audit.checkpoint(world.a.id).note == first.note
    assert rt.audit.latest_checkpoint(world.a.id) == first.note


def test_api_proofs_verify_against_checkpoints(rt: Runtime, world: World) -> None:
    tenant = world.b.id
    old = rt.audit.checkpoint(tenant).checkpoint
    rt.audit.append(tenant, *(_event(n=i) for i in range(37)))
    new = rt.audit.checkpoint(tenant).checkpoint
    entries = _all_entries(rt, tenant)
    with rt.db.tenant_tx(tenant) as s:
        for index in range(new.size):
            proof = rt.audit.inclusion_proof(s, tenant, index, new.size)
            merkle.verify_inclusion(
                index, new.size, merkle.leaf_hash(entries[index]), proof, new.root_hash
            )
        proof = rt.audit.consistency_proof(s, tenant, old.size, new.size)
    merkle.verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)


def test_proofs_for_sizes_the_log_has_not_reached_are_refused(rt: Runtime, world: World) -> None:
    tenant = world.a.id
    with rt.db.tenant_tx(tenant) as s:
        size = rt.audit.size(s, tenant)
        with pytest.raises(ProofError):
            rt.audit.inclusion_proof(s, tenant, 0, size + 1)
        with pytest.raises(ProofError):
            rt.audit.inclusion_proof(s, tenant, size, size)
        with pytest.raises(ProofError):
            rt.audit.consistency_proof(s, tenant, 1, size + 1)
        with pytest.raises(ProofError):
            rt.audit.consistency_proof(s, tenant, 0, size)


def test_concurrent_appends_are_group_committed_with_contiguous_indices(
    rt: Runtime, world: World
) -> None:
    tenant = world.a.id
    start = len(_all_entries(rt, tenant))
    commits: list[int] = []
    shards = rt.audit._committer._shards
    real_commit = shards[0]._commit

    def counting(groups: dict[str, list[object]]) -> None:
        commits.append(1)
        real_commit(groups)  # type: ignore[arg-type]

    for shard in shards:
        shard._commit = counting  # type: ignore[assignment]
    results: list[list[int]] = [[] for _ in range(16)]
    go = threading.Event()

    def work(n: int) -> None:
        go.wait()
        for i in range(20):
            results[n].extend(rt.audit.append(tenant, _event(f"prn_{n}", i)))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join(60)
    got = sorted(i for r in results for i in r)
    assert got == list(range(start, start + 320))
    assert all(r == sorted(r) for r in results)
    assert len(commits) < 320  # batched: fewer transactions than appends
    entries = _all_entries(rt, tenant)
    cp = rt.audit.checkpoint(tenant).checkpoint
    assert cp.root_hash == merkle.root([merkle.leaf_hash(e) for e in entries])


def test_concurrent_appends_in_request_transactions_never_collide(
    rt: Runtime, world: World
) -> None:
    """Appends in the callers' own transactions (``append_in``), from many threads at once,
    mixed with the group-committed path: on SQLite the head is read inside the write
    transaction (store.db.begin_write), so no two take one index (a duplicate index used
    to fail ~10 % of them with 503)."""
    tenant = world.a.id
    start = len(_all_entries(rt, tenant))
    failures: list[str] = []
    got: list[int] = []
    go = threading.Event()

    def work(n: int) -> None:
        go.wait()
        for i in range(25):
            try:
                if i % 5 == 0:
                    got.extend(rt.audit.append(tenant, _event(f"prn_{n}", i)))
                    continue
                with rt.db.tenant_tx(tenant) as s:
                    got.extend(rt.audit.append_in(s, tenant, _event(f"prn_{n}", i)))
            except AuditUnavailableError as exc:
                failures.append(type(exc.__cause__ or exc.__context__).__name__)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join(60)
    assert failures == []
    assert sorted(got) == list(range(start, start + 200))
    entries = _all_entries(rt, tenant)
    cp = rt.audit.checkpoint(tenant).checkpoint
    assert cp.root_hash == merkle.root([merkle.leaf_hash(e) for e in entries])


def test_checkpoints_taken_under_concurrent_load_are_all_consistent(
    rt: Runtime, world: World
) -> None:
    tenant = world.b.id
    stop = threading.Event()
    errors: list[BaseException] = []

    def appender(n: int) -> None:
        i = 0
        while not stop.is_set():
            try:
                rt.audit.append(tenant, _event(f"prn_{n}", i))
            except BaseException as exc:  # noqa: BLE001 - collected and asserted on below
                errors.append(exc)
                return
            i += 1

    threads = [threading.Thread(target=appender, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    seen: list[Checkpoint] = []
    try:
        while len(seen) < 15:
            cp = rt.audit.checkpoint(tenant).checkpoint
            if not seen or cp.size > seen[-1].size:
                seen.append(cp)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not errors
    with rt.db.tenant_tx(tenant) as s:
        for old, new in itertools.pairwise(seen):
            proof = rt.audit.consistency_proof(s, tenant, old.size, new.size)
            merkle.verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)
        stored = s.execute(
            select(AuditCheckpoint.size).where(AuditCheckpoint.tenant_id == tenant)
        ).scalars()
        assert {c.size for c in seen} <= set(stored)


def test_an_oversized_entry_is_refused_and_nothing_is_written(rt: Runtime, world: World) -> None:
    tenant = world.a.id
    before = len(_all_entries(rt, tenant))
    big = AuditEvent("x", Outcome.SUCCESS, "prn", "tenant", "t", detail={"n": "0" * 70_000})
    with pytest.raises(AuditUnavailableError):
        rt.audit.append(tenant, _event(), big)
    assert len(_all_entries(rt, tenant)) == before


def test_an_unwritable_log_fails_the_append_and_later_appends_recover(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        {},
        data_dir=tmp_path / "data",
        db_busy_timeout_ms=100,
        audit_append_timeout_ms=3000,
    )
    rt = Runtime.open(settings, create_key=True)
    try:
        tenant = _bare_tenant(rt)
        assert rt.audit.append(tenant, _event()) == [0]
        blocker = sqlite3.connect(settings.data_dir / "callvault.db", isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(AuditUnavailableError):
                rt.audit.append(tenant, _event(n=1))
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert rt.audit.append(tenant, _event(n=2)) == [1]
        assert len(_all_entries(rt, tenant)) == 2
    finally:
        rt.close()


def test_secret_references_are_keyed_per_tenant_and_stable(rt: Runtime, world: World) -> None:
    a = rt.audit.log_key(world.a.id)
    b = rt.audit.log_key(world.b.id)
    ref = a.secret_ref("sk_live_123")
    assert ref.startswith("hmac-sha256:")
    assert len(ref) == len("hmac-sha256:") + 64
    assert "sk_live_123" not in ref
    assert a.secret_ref("sk_live_123") == ref
    assert b.secret_ref("sk_live_123") != ref


def test_a_head_that_disagrees_with_its_merkle_state_stops_appends(
    rt: Runtime, world: World
) -> None:
    tenant = world.a.id
    with rt.db.tenant_tx(tenant) as s:
        s.execute(
            text("UPDATE audit_heads SET size = size + 1 WHERE tenant_id = :t"), {"t": tenant}
        )
    with pytest.raises(AuditUnavailableError):
        rt.audit.append(tenant, _event())


def _bare_tenant(rt: Runtime) -> str:
    from callvault.store import new_id  # noqa: PLC0415 - test helper
    from callvault.store.models import Tenant, utcnow  # noqa: PLC0415 - test helper

    tenant = new_id("ten")
    with rt.db.tenant_tx(tenant) as s:
        s.add(Tenant(id=tenant, name="bare", created_at=utcnow()))
    return tenant


def test_migrating_a_log_written_before_merkle_state_backfills_it(
    tmp_path: Path,
) -> None:
    settings = load_settings({}, data_dir=tmp_path / "data")
    rt = Runtime.open(settings, create_key=True, migrate=False)
    try:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", "src/callvault/store/migrations")
        with rt.db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0002")
        tenant = _bare_tenant_at_0002(rt)
        entries = [f'{{"n":{i}}}'.encode() for i in range(11)]
        with rt.db.engine.begin() as conn:
            conn.execute(
                text("INSERT INTO audit_heads (tenant_id, size) VALUES (:t, :n)"),
                {"t": tenant, "n": len(entries)},
            )
            for i, e in enumerate(entries):
                conn.execute(
                    text(
                        "INSERT INTO audit_entries (tenant_id, idx, created_at, entry)"
                        " VALUES (:t, :i, '2026-01-01 00:00:00', :e)"
                    ),
                    {"t": tenant, "i": i, "e": e},
                )
        rt.db.migrate()
        with rt.db.tenant_tx(tenant) as s:
            hashes = s.execute(
                select(AuditEntry.hashes).where(AuditEntry.tenant_id == tenant)
            ).scalars()
            # One hash per leaf, plus one per subtree it closes.
            assert sum(len(h or b"") // 32 for h in hashes) == 11 + (11 - (11).bit_count())
            head = s.get(AuditHead, tenant)
            assert head is not None
            assert head.compact is not None
        assert rt.audit.append(tenant, _event()) == [11]
        leaves = [merkle.leaf_hash(e) for e in _all_entries(rt, tenant)]
        assert rt.audit.checkpoint(tenant).checkpoint.root_hash == merkle.root(leaves)
    finally:
        rt.close()


def _bare_tenant_at_0002(rt: Runtime) -> str:
    tenant = "ten_backfill0000000000000000000"
    with rt.db.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO tenants (id, name, created_at) VALUES (:t, 'old', '2026-01-01')"),
            {"t": tenant},
        )
    return tenant


def test_the_schedule_checkpoints_every_log_that_grew_and_only_those(
    tmp_path: Path,
) -> None:
    settings = load_settings({}, data_dir=tmp_path / "data", audit_checkpoint_interval_seconds=0.05)
    rt = Runtime.open(settings, create_key=True)
    try:
        grown, quiet = _bare_tenant(rt), _bare_tenant(rt)
        rt.audit.checkpoint_grown()  # nothing yet
        rt.audit.append(grown, _event(), _event(n=1))
        rt.audit.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with rt.db.tenant_tx(grown) as s:
                sizes = list(
                    s.execute(
                        select(AuditCheckpoint.size).where(AuditCheckpoint.tenant_id == grown)
                    ).scalars()
                )
            if sizes:
                break
            time.sleep(0.02)
        assert sizes == [2]
        with rt.db.tenant_tx(quiet) as s:
            query = select(AuditCheckpoint.size).where(AuditCheckpoint.tenant_id == quiet)
            assert s.execute(query).all() == []
    finally:
        rt.close()
