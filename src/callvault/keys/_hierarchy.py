"""The key hierarchy: KEKs per deployment, data keys per call or object (ADR 7).

Rows (``keks``, ``data_keys``) live in the tenant's transaction; KEKs live in
their provider; unwrapped data keys live only in :class:`DataKeyCache`.
Callers MUST pass the tenant transaction the sealed data is written or read
in, so a data key and the object it seals commit together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from callvault.errors import DecryptionError, InvalidInputError, KeyUnavailableError
from callvault.keys._cache import DataKeyCache
from callvault.keys._context import WrapContext
from callvault.keys._provider import KeyProvider
from callvault.keys._registry import instance_name
from callvault.store import new_id
from callvault.store.models import DataKey, Deployment, Kek, utcnow

#: ``deployment_id`` of tenant-level KEKs and keys in wrap contexts.
TENANT_SCOPE = "-"

_FIND_KEY = (
    select(DataKey.id, DataKey.wrapped, Kek.provider, Kek.provider_ref, Kek.state)
    .join(Kek, Kek.id == DataKey.kek_id)
    .where(
        DataKey.tenant_id == bindparam("t"),
        DataKey.owner_kind == bindparam("k"),
        DataKey.owner_id == bindparam("o"),
        DataKey.purpose == bindparam("p"),
    )
)


@dataclass(frozen=True, slots=True)
class KeyOwner:
    """Whose data key: a call, a configuration version, ..., in a tenant and deployment."""

    tenant_id: str
    deployment_id: str | None
    kind: str
    id: str
    purpose: str = "data-key"

    def wrap_context(self) -> WrapContext:
        return WrapContext(
            tenant_id=self.tenant_id,
            deployment_id=self.deployment_id or TENANT_SCOPE,
            owner_kind=self.kind,
            owner_id=self.id,
            purpose=self.purpose,
        )


class KeyHierarchy:
    """Creates, unwraps (through the cache), rotates and shreds data keys."""

    def __init__(
        self,
        providers: Mapping[str, KeyProvider],
        cache: DataKeyCache,
        *,
        default_provider: str = "local",
    ) -> None:
        if default_provider not in providers:
            raise KeyUnavailableError(f"key provider {default_provider} is not configured")
        self._providers = providers
        self._default = default_provider
        self.cache = cache

    def check(self) -> None:
        """Every configured provider is usable (the local keyring opens, a KMS answers)."""
        check = getattr(self._providers, "check", None)
        if check is not None:  # a ProviderRegistry: also builds the configured providers
            check()
            return
        for provider in self._providers.values():
            provider.ready()

    def provider(self, name: str) -> KeyProvider:
        try:
            return self._providers[name]
        except KeyError:
            raise KeyUnavailableError(f"key provider {name} is not configured") from None

    @property
    def providers(self) -> Mapping[str, KeyProvider]:
        return self._providers

    # -- KEKs ------------------------------------------------------------------------

    def active_kek(self, session: Session, tenant_id: str, deployment_id: str | None) -> Kek:
        """The scope's active KEK, created on first use with the deployment's provider."""
        row = session.execute(
            select(Kek).where(
                Kek.tenant_id == tenant_id,
                Kek.deployment_id.is_(None)
                if deployment_id is None
                else Kek.deployment_id == deployment_id,
                Kek.state == "active",
            )
        ).scalar_one_or_none()
        if row is not None:
            return row
        return self.new_kek(session, tenant_id, deployment_id, version=1)

    def new_kek(
        self, session: Session, tenant_id: str, deployment_id: str | None, *, version: int
    ) -> Kek:
        """Create KEK ``version`` for the scope at the deployment's provider (state active)."""
        name, key_ref = self._default, None
        if deployment_id is not None:
            dep = session.get(Deployment, deployment_id)
            if dep is None or dep.tenant_id != tenant_id:
                raise KeyUnavailableError(f"no deployment {deployment_id} for a key")
            require = getattr(self._providers, "require", None)
            if require is not None:
                require(dep.key_provider)  # 422 naming key_provider if this install lacks it
            name, key_ref = instance_name(dep.key_provider, dep.region), dep.key_ref
        provider = self.provider(name)
        if key_ref is not None and version == 1:
            try:
                ref = provider.adopt_kek(key_ref)  # the customer's own key (BYOK)
            except InvalidInputError as exc:  # name the setting the customer gave us
                raise InvalidInputError(exc.message, field="key_ref") from None
        else:
            ref = provider.create_kek(f"{tenant_id}/{deployment_id or TENANT_SCOPE}")
        row = Kek(
            id=new_id("kek"),
            tenant_id=tenant_id,
            deployment_id=deployment_id,
            provider=name,
            provider_ref=ref,
            version=version,
            state="active",
            created_at=utcnow(),
        )
        session.add(row)
        session.flush()
        return row

    # -- data keys ---------------------------------------------------------------------

    def data_key(self, session: Session, owner: KeyOwner, *, create: bool) -> bytes:
        """The owner's data key; created (and wrapped) on first use when ``create``.

        A missing key without ``create`` is a shredded (or never-made) key: the
        data under it cannot be opened, and that is a :class:`DecryptionError`.
        A provider that cannot be used is a :class:`KeyUnavailableError` whose
        one line names the provider, the key and the deployment.
        """
        try:
            return self._data_key(session, owner, create=create)
        except KeyUnavailableError as exc:
            scope = f"deployment {owner.deployment_id}" if owner.deployment_id else "tenant keys"
            raise KeyUnavailableError(f"{exc.message} ({scope})") from None

    def _data_key(self, session: Session, owner: KeyOwner, *, create: bool) -> bytes:
        params = {"t": owner.tenant_id, "k": owner.kind, "o": owner.id, "p": owner.purpose}
        row = session.connection().execute(_FIND_KEY, params).one_or_none()
        ctx = owner.wrap_context()
        if row is not None:
            key_id, wrapped, provider, ref, state = row
            if state == "destroyed":
                raise KeyUnavailableError(f"{provider}: key {ref} has been destroyed")
            return self.cache.get(key_id, lambda: self.provider(provider).unwrap(ref, wrapped, ctx))
        if not create:
            raise DecryptionError
        kek = self.active_kek(session, owner.tenant_id, owner.deployment_id)
        key, wrapped = self.provider(kek.provider).generate(kek.provider_ref, ctx)
        dk = DataKey(
            id=new_id("dk"),
            tenant_id=owner.tenant_id,
            deployment_id=owner.deployment_id,
            owner_kind=owner.kind,
            owner_id=owner.id,
            purpose=owner.purpose,
            kek_id=kek.id,
            wrapped=wrapped,
            created_at=utcnow(),
        )
        session.add(dk)
        session.flush()
        return self.cache.get(dk.id, lambda: key)

    def shred(self, session: Session, tenant_id: str, owner_kind: str, owner_id: str) -> int:
        """Delete every data key of an owner: what they sealed can never be opened again."""
        rows = session.execute(
            select(DataKey.id).where(
                DataKey.tenant_id == tenant_id,
                DataKey.owner_kind == owner_kind,
                DataKey.owner_id == owner_id,
            )
        ).scalars()
        ids = list(rows)
        if ids:
            session.execute(delete(DataKey).where(DataKey.id.in_(ids)))
        for key_id in ids:
            self.cache.forget(key_id)
        return len(ids)
