"""Audit log figures: durable appends/s under 64 writers, p99 latency, proof time at 1M.

Appends: ``--writers`` threads (default 64) call ``AuditLog.append`` in a loop
for ``--seconds`` over ``--tenants`` tenants, exactly as request threads do;
an append returns only after its group commit has committed, so every
counted append is durable. On PostgreSQL the server runs with ``fsync``,
``synchronous_commit`` and ``full_page_writes`` on (the test suite's cluster
has them off), started on loopback by the launcher the tests use.

Proofs: a log of ``--proof-size`` entries (default 1,000,000) is written in
bulk (entries, every subtree hash, the head) straight into SQLite, then
inclusion proofs for random indices at the full size are generated through
``AuditLog.inclusion_proof`` (one indexed read + folding), and each is checked.

Verification: that log is exported (``callvault audit export``'s code path,
a fresh checkpoint, entries streamed into a bundle) and the bundle verified
offline against the pinned log key (``callvault audit verify``'s code).
``bench/audit_verify.py`` measures the verifier alone on a synthetic bundle.

    python bench/audit.py [--backend sqlite|postgresql|both] [--writers 64] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert

from _calibration import calibration_us
from callvault.audit import AuditEvent, Outcome, merkle
from callvault.audit._entry import entry_bytes
from callvault.audit._export import export_bundle
from callvault.audit.proofs import append_leaves
from callvault.config import load_settings
from callvault.runtime import Runtime
from callvault.store import new_id
from callvault.store.models import AuditEntry, AuditHead, Tenant, utcnow


def _tenants(rt: Runtime, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        tid = new_id("ten")
        with rt.db.tenant_tx(tid) as s:
            s.add(Tenant(id=tid, name="bench", created_at=utcnow()))
        ids.append(tid)
    return ids


def _event(n: int, i: int) -> AuditEvent:
    return AuditEvent(
        action="transcript:read",
        outcome=Outcome.ALLOWED,
        actor=f"prn_{n:026d}",
        resource_kind="call",
        resource_id=f"call_{i:026d}",
        request_id=f"req_{n}_{i}",
        detail={"policies": ["role-compliance-officer"], "key": f"key_{n:026d}"},
    )


def appends(rt: Runtime, writers: int, seconds: float, tenants: int) -> dict[str, Any]:
    ids = _tenants(rt, tenants)
    for tid in ids:  # warm: head rows exist, writer thread started
        rt.audit.append(tid, _event(0, 0))
    latencies: list[list[float]] = [[] for _ in range(writers)]
    errors: list[str] = []
    go, stop = threading.Event(), threading.Event()

    def work(n: int) -> None:
        tid = ids[n % len(ids)]
        mine = latencies[n]
        go.wait()
        i = 0
        while not stop.is_set():
            t = time.perf_counter()
            try:
                rt.audit.append(tid, _event(n, i))
            except Exception as exc:  # noqa: BLE001 - counted and reported
                errors.append(type(exc).__name__)
                return
            mine.append(time.perf_counter() - t)
            i += 1

    threads = [threading.Thread(target=work, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    go.set()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    flat = sorted(x for lat in latencies for x in lat)
    # Every append is checked to be in the log, contiguous.
    total = 0
    for tid in ids:
        with rt.db.tenant_tx(tid) as s:
            size = rt.audit.size(s, tid)
            total += size - 1
            leaves = [merkle.leaf_hash(e) for _, e in rt.audit.read(s, tid, start=0, limit=size)]
        if rt.audit.checkpoint(tid).checkpoint.root_hash != merkle.root(leaves):
            errors.append("root mismatch")
    return {
        "writers": writers,
        "tenants": tenants,
        "seconds": round(elapsed, 2),
        "appends": len(flat),
        "appends_in_log": total,
        "appends_per_s": round(len(flat) / elapsed),
        "p50_ms": round(statistics.median(flat) * 1000, 2) if flat else None,
        "p99_ms": round(flat[int(len(flat) * 0.99)] * 1000, 2) if flat else None,
        "errors": sorted(set(errors)),
    }


def proofs(root: Path, size: int, samples: int) -> dict[str, Any]:
    settings = load_settings({}, data_dir=root / "proofs")
    rt = Runtime.open(settings, create_key=True)
    try:
        tid = _tenants(rt, 1)[0]
        t0 = time.perf_counter()
        state = merkle.CompactRange()
        now = utcnow()
        chunk = 50_000
        with rt.db.tenant_tx(tid) as s:
            for start in range(0, size, chunk):
                entries = [
                    entry_bytes(tid, _event(0, i), now)
                    for i in range(start, min(size, start + chunk))
                ]
                state, hashes = append_leaves(state, [merkle.leaf_hash(e) for e in entries])
                s.execute(
                    insert(AuditEntry.__table__),  # type: ignore[arg-type]
                    [
                        {
                            "tenant_id": tid,
                            "idx": start + k,
                            "created_at": now,
                            "entry": e,
                            "hashes": h,
                        }
                        for k, (e, h) in enumerate(zip(entries, hashes, strict=True))
                    ],
                )
            s.add(AuditHead(tenant_id=tid, size=state.size, compact=state.to_bytes()))
        build = time.perf_counter() - t0
        cp = rt.audit.checkpoint(tid).checkpoint
        times = []
        rng = random.Random(7)
        with rt.db.tenant_tx(tid) as s:
            for _ in range(samples):
                index = rng.randrange(size)
                t = time.perf_counter()
                proof = rt.audit.inclusion_proof(s, tid, index, size)
                times.append(time.perf_counter() - t)
                row = s.get(AuditEntry, (tid, index))
                if row is None:
                    raise SystemExit(f"entry {index} missing")
                leaf = merkle.leaf_hash(row.entry)
                merkle.verify_inclusion(index, size, leaf, proof, cp.root_hash)
        times.sort()
        # Export that log through the CLI's own code path, then verify it offline.
        with rt.db.tenant_tx(tid) as s:
            _origin, key = rt.audit.keys.public(s, tid)
        t = time.perf_counter()
        summary = export_bundle(rt.db, rt.audit, tid, root / "bundle", actor="bench")
        export_s = time.perf_counter() - t
        # Verified as a customer would: `callvault audit verify` in a process of its
        # own (this one has the service's threads, which rule out the verifier's
        # helper processes).
        cli = Path(sys.executable).with_name("callvault")
        t = time.perf_counter()
        done = subprocess.run(
            [str(cli), "audit", "verify", str(root / "bundle"), "--trusted-key", key],
            capture_output=True,
            text=True,
            check=False,
        )
        verify_s = time.perf_counter() - t
        if done.returncode != 0 or not done.stdout.startswith("OK:"):
            raise SystemExit(done.stdout + done.stderr)
        return {
            "backend": "sqlite",
            "size": size,
            "build_seconds": round(build, 1),
            "samples": samples,
            "inclusion_proof_median_ms": round(statistics.median(times) * 1000, 3),
            "inclusion_proof_p99_ms": round(times[int(len(times) * 0.99)] * 1000, 3),
            "bundle_entries": summary.size,
            "bundle_bytes": summary.total_bytes,
            "export_seconds": round(export_s, 2),
            "verify_seconds": round(verify_s, 2),
        }
    finally:
        rt.close()


def _run_appends(settings_kw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    rt = Runtime.open(load_settings({}, **settings_kw), create_key=True)
    try:
        return appends(rt, args.writers, args.seconds, args.tenants)
    finally:
        rt.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--writers", type=int, default=64)
    ap.add_argument("--tenants", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--proof-size", type=int, default=1_000_000)
    ap.add_argument("--proof-samples", type=int, default=2000)
    args = ap.parse_args()
    out: dict[str, Any] = {"calibration_us": calibration_us()}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        root = Path(tmp)
        if args.backend in ("sqlite", "both"):
            out["sqlite"] = _run_appends({"data_dir": root / "sqlite"}, args)
        if args.backend in ("postgresql", "both"):
            from tests.integration.pg import OWNER_ROLE, PgCluster  # noqa: PLC0415 - only here

            cluster = PgCluster.start(durable=True)
            stack.callback(cluster.stop)
            dbname = cluster.create_database()
            settings = {
                "data_dir": root / "pg",
                "database_url": cluster.url(dbname),
                "migration_database_url": cluster.url(dbname, user=OWNER_ROLE),
                "db_pool_size": 80,
            }
            out["postgresql"] = _run_appends(settings, args)
        if args.proof_size:
            out["proofs"] = proofs(root, args.proof_size, args.proof_samples)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
