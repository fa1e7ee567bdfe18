"""Data key unwraps per second: through the in-memory cache, and without it.

Set-up: a migrated SQLite database, the local key provider, one deployment KEK
and 2,000 call data keys. Each timed operation is ``KeyHierarchy.data_key()``
for a random call (a database read of the wrapped key, then the unwrap or a
cache hit), so the figures are what a request pays. Prints one JSON object.

With ``--provider vault-transit`` the KEK lives in an OpenBao dev server the
bench starts on loopback (the same launcher the tests use), where every cache
miss is an HTTP round trip: that is where the cache earns its keep.

    python bench/keys.py [--keys N] [--seconds S] [--provider local|vault-transit]
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from callvault.config import load_settings
from callvault.keys import DataKeyCache, KeyHierarchy, KeyOwner, KeyProvider, LocalKeyProvider
from callvault.keys._vault_transit import VaultTransitKeyProvider
from callvault.store import Database, new_id
from callvault.store.models import Deployment, Tenant, utcnow


def _setup(root: Path, n: int, provider: KeyProvider) -> tuple[Database, str, list[KeyOwner]]:
    db = Database(load_settings({}, data_dir=root / "data"))
    db.migrate()
    tenant, dep = new_id("ten"), new_id("dep")
    with db.tenant_tx(tenant) as s:
        s.add(Tenant(id=tenant, name="bench", created_at=utcnow()))
        s.flush()
        s.add(
            Deployment(
                id=dep,
                tenant_id=tenant,
                name="bench",
                region="eu-west-2",
                recording_retention_days=1,
                transcript_retention_days=1,
                key_provider=provider.name,
                created_at=utcnow(),
            )
        )
    owners = [KeyOwner(tenant, dep, "call", new_id("call")) for _ in range(n)]
    keys = KeyHierarchy(
        {provider.name: provider},
        DataKeyCache(max_keys=0, ttl_seconds=0),
        default_provider=provider.name,
    )
    with db.tenant_tx(tenant) as s:
        for owner in owners:
            keys.data_key(s, owner, create=True)
    return db, tenant, owners


def _rate(
    keys: KeyHierarchy, db: Database, tenant: str, owners: list[KeyOwner], seconds: float
) -> float:
    rng = random.Random(1)
    done = 0
    deadline = time.perf_counter() + seconds
    with db.tenant_tx(tenant) as s:
        while time.perf_counter() < deadline:
            for _ in range(100):
                keys.data_key(s, rng.choice(owners), create=False)
            done += 100
    return done / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--provider", choices=("local", "vault-transit"), default="local")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cv-bench-keys-") as tmp, ExitStack() as stack:
        provider: KeyProvider
        if args.provider == "vault-transit":
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, for tests/
            from tests.integration.openbao import OpenBao, find_bao  # noqa: PLC0415 - optional peer

            bao = OpenBao.start(find_bao())
            stack.callback(bao.stop)
            provider = VaultTransitKeyProvider(bao.address, bao.token)
        else:
            provider = LocalKeyProvider(
                Path(tmp) / "keyring.json", root_key=secrets.token_bytes(32)
            )
        db, tenant, owners = _setup(Path(tmp), args.keys, provider)
        name = provider.name
        uncached = KeyHierarchy(
            {name: provider}, DataKeyCache(max_keys=0, ttl_seconds=0), default_provider=name
        )
        cached = KeyHierarchy(
            {name: provider},
            DataKeyCache(max_keys=args.keys * 2, ttl_seconds=3600),
            default_provider=name,
        )
        _rate(cached, db, tenant, owners, 1.0)  # warm the cache
        without = _rate(uncached, db, tenant, owners, args.seconds)
        with_cache = _rate(cached, db, tenant, owners, args.seconds)
        db.dispose()
    print(
        json.dumps(
            {
                "bench": "keys.unwrap",
                "provider": args.provider,
                "data_keys": args.keys,
                "unwraps_per_second_without_cache": round(without),
                "lookups_per_second_with_cache": round(with_cache),
                "speedup": round(with_cache / without, 2),
                "cache_hit_rate": round(
                    cached.cache.hits / max(1, cached.cache.hits + cached.cache.misses), 3
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
