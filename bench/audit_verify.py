"""Offline verification of an audit bundle: seconds for a million entries.

Set-up (not timed): N canonical JSON entries of about 300 bytes, shaped like
the service's (RFC 8785, ids only), their RFC 9162 root signed as a C2SP
checkpoint by a fresh Ed25519 log key, and a bundle written by
``callvault.audit.bundle.write_bundle`` into a temporary directory. Timed:
``verify_bundle`` of that directory, pinned to the log key and to a trusted
checkpoint at half the size (so the consistency check runs too), best of
``--repeat`` runs. Prints one JSON object.

    python bench/audit_verify.py [--entries N] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from callvault.audit.bundle import write_bundle
from callvault.audit.checkpoint import Checkpoint
from callvault.audit.merkle import CompactRange, leaf_hash
from callvault.audit.note import Signer, sign
from callvault.crypto.hazmat import Ed25519SigningKey

ORIGIN = "callvault.localhost/audit/ten_01JBENCHBENCH"
# Keys sorted and no whitespace, as RFC 8785 writes them; the fields vary per entry.
TEMPLATE = (
    '{"action":"call.transcript.read","actor":"prn_01J%013d","class_uid":6003,'
    '"detail":{"segments":%d},"outcome":"allowed","request_id":"req_%016d",'
    '"resource":{"id":"call_01J%013d","kind":"call"},"tenant":"ten_01JBENCHBENCH",'
    '"time":"2025-06-01T12:00:00.%06dZ","v":1}'
)


def entries(n: int) -> Iterator[tuple[int, bytes]]:
    for i in range(n):
        yield i, (TEMPLATE % (i % 997, i % 50, i, i // 3, i % 1_000_000)).encode()


def checkpoint_at(size: int, signer: Signer) -> bytes:
    state = CompactRange().extend(leaf_hash(e) for _, e in entries(size))
    return sign(Checkpoint(ORIGIN, size, state.root()).encode(), signer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    # Imported here so the set-up's imports are not charged to the verifier.
    from callvault.audit.bundle import verify_bundle  # noqa: PLC0415 - see above

    signer = Signer(ORIGIN, Ed25519SigningKey.generate())
    key = signer.verifier().key_string()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bundle"
        note = checkpoint_at(args.entries, signer)
        pinned = checkpoint_at(args.entries // 2, signer)
        t0 = time.perf_counter()
        summary = write_bundle(
            out,
            tenant="ten_bench",
            entries=entries(args.entries),
            checkpoint_note=note,
            verifier_key=key,
        )
        write_seconds = time.perf_counter() - t0
        best = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            verdict = verify_bundle(out, trusted_key=key, trusted_checkpoint=pinned)
            best = min(best, time.perf_counter() - t0)
            if not verdict.ok:
                sys.exit("\n".join(verdict.lines()))
    print(
        json.dumps(
            {
                "entries": args.entries,
                "verify_seconds": round(best, 3),
                "bundle_bytes": summary.total_bytes,
                "write_seconds": round(write_seconds, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
