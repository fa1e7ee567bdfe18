"""set_active: deactivating revokes every live API key in the caller's transaction."""

from __future__ import annotations

from datetime import timedelta

import pytest

from callvault import access
from callvault.access._principals import set_active
from callvault.bootstrap import create_tenant_with_owner
from callvault.errors import AuthenticationError, NotFoundError
from callvault.runtime import Runtime


def test_deactivating_revokes_every_key_and_authentication_refuses_them(rt: Runtime) -> None:
    init = create_tenant_with_owner(rt, tenant_name="t", owner_name="o")
    with rt.db.tenant_tx(init.tenant_id) as s:
        p = access.create_principal(s, init.tenant_id, kind="user", name="u")
        keys = [
            access.issue_key(s, init.tenant_id, p.id, label=str(i), ttl=timedelta(days=1))
            for i in range(3)
        ]
        access.revoke_key(s, init.tenant_id, keys[0].id)
    with rt.db.tenant_tx(init.tenant_id) as s:
        revoked = set_active(s, init.tenant_id, p.id, active=False)
    assert revoked == sorted(k.id for k in keys[1:])  # the already-revoked one is not counted
    for key in keys:
        with rt.db.tenant_tx(init.tenant_id) as s, pytest.raises(AuthenticationError):
            access.authenticate(s, access.parse_token(key.token))
    with rt.db.tenant_tx(init.tenant_id) as s:
        assert set_active(s, init.tenant_id, p.id, active=True) == []
    with rt.db.tenant_tx(init.tenant_id) as s, pytest.raises(AuthenticationError):
        access.authenticate(s, access.parse_token(keys[2].token))
    # The owner's key (another principal) is untouched.
    with rt.db.tenant_tx(init.tenant_id) as s:
        assert access.authenticate(s, access.parse_token(init.token)).id == init.principal_id


def test_another_tenants_principal_is_not_found(rt: Runtime) -> None:
    a = create_tenant_with_owner(rt, tenant_name="a", owner_name="o")
    b = create_tenant_with_owner(rt, tenant_name="b", owner_name="o")
    with rt.db.tenant_tx(a.tenant_id) as s, pytest.raises(NotFoundError):
        set_active(s, a.tenant_id, b.principal_id, active=False)
    with rt.db.tenant_tx(b.tenant_id) as s:
        assert access.authenticate(s, access.parse_token(b.token)).active is True
