"""API keys: shown once, stored as a salted hash, expiring and revocable."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from callvault import access
from callvault.errors import AuthenticationError
from callvault.runtime import Runtime
from callvault.store.models import ApiKey, Principal, utcnow
from tests.support.world import World


def test_token_secret_is_never_stored(rt: Runtime, world: World) -> None:
    token = world.a.owner_token
    secret = token.rsplit(".", 1)[1]
    with rt.db.tenant_tx(world.a.id) as s:
        rows = s.execute(select(ApiKey)).scalars().all()
        for row in rows:
            blob = row.salt + row.secret_hash + row.label.encode() + row.id.encode()
            assert secret.encode() not in blob
            assert len(row.salt) == 16
            assert len(row.secret_hash) == hashlib.sha256().digest_size


@pytest.mark.parametrize(
    "token",
    [
        "",
        "cv1",
        "cv1.ten_x.key_y.z",
        "Bearer abc",
        "cv1." + "ten_" + "a" * 26 + ".key_" + "b" * 26 + "." + "!" * 43,
        "cv2." + "ten_" + "a" * 26 + ".key_" + "b" * 26 + "." + "A" * 43,
    ],
)
def test_malformed_tokens_are_rejected_before_any_lookup(token: str) -> None:
    with pytest.raises(AuthenticationError):
        access.parse_token(token)


def test_wrong_secret_for_a_real_key_id_is_rejected(rt: Runtime, world: World) -> None:
    head, _ = world.a.owner_token.rsplit(".", 1)
    forged = access.parse_token(head + "." + "A" * 43)
    with rt.db.tenant_tx(world.a.id) as s, pytest.raises(AuthenticationError):
        access.authenticate(s, forged)


def test_key_presented_with_another_tenants_id_is_rejected(rt: Runtime, world: World) -> None:
    _, _tenant, key_id, secret = world.a.owner_token.split(".")
    moved = access.parse_token(f"cv1.{world.b.id}.{key_id}.{secret}")
    with rt.db.tenant_tx(world.b.id) as s, pytest.raises(AuthenticationError):
        access.authenticate(s, moved)


def test_revoked_key_stops_working_immediately(rt: Runtime, world: World) -> None:
    parts = access.parse_token(world.a.owner_token)
    with rt.db.tenant_tx(world.a.id) as s:
        access.authenticate(s, parts)
        access.revoke_key(s, world.a.id, parts.key_id)
    with rt.db.tenant_tx(world.a.id) as s, pytest.raises(AuthenticationError):
        access.authenticate(s, parts)


def test_expired_key_is_rejected(rt: Runtime, world: World) -> None:
    with rt.db.tenant_tx(world.a.id) as s:
        p = access.create_principal(s, world.a.id, kind="service", name="short-lived")
        issued = access.issue_key(s, world.a.id, p.id, label="x", ttl=timedelta(seconds=30))
        s.get_one(ApiKey, issued.id).expires_at = utcnow() - timedelta(seconds=1)
    with rt.db.tenant_tx(world.a.id) as s, pytest.raises(AuthenticationError):
        access.authenticate(s, access.parse_token(issued.token))


def test_deactivated_principal_cannot_use_its_keys(rt: Runtime, world: World) -> None:
    parts = access.parse_token(world.a.owner_token)
    with rt.db.tenant_tx(world.a.id) as s:
        principal = access.authenticate(s, parts)
        s.get_one(Principal, principal.id).active = False
    with rt.db.tenant_tx(world.a.id) as s, pytest.raises(AuthenticationError):
        access.authenticate(s, parts)
