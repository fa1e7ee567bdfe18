"""The running service's parts, built once from settings and checked (fail closed).

Both the API and the CLI's local commands (``init``) use :class:`Runtime`, so
there is one place that decides which database, sealer and audit log are in
use and refuses to start when any of them is not usable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from callvault.access import Gate, default_authorizer
from callvault.audit import AuditLog
from callvault.audit._sink_store import SinkStore
from callvault.audit.sinks import SinkCursors, SinkDispatcher
from callvault.config import Settings
from callvault.crypto import Sealer
from callvault.errors import Error, UnavailableError
from callvault.keys import (
    KEYRING_FILE,
    DataKeyCache,
    EnvelopeSealer,
    KeyHierarchy,
    LocalKeyProvider,
    ProviderRegistry,
    create_root_key,
    load_root_key,
)
from callvault.payments._cvv_holds import CvvHolds
from callvault.store import Database
from callvault.store.objects import ObjectStores, parse_object_stores


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    checks: dict[str, bool]
    #: Counts only (no ids): SIEM sinks, their total backlog, how many are failing.
    sinks: dict[str, int] = field(default_factory=dict)


def build_keys(settings: Settings, *, create: bool = False) -> KeyHierarchy:
    """The key hierarchy with the configured providers (the local keyring today)."""
    keyring = settings.data_dir / "keyring" / KEYRING_FILE
    if settings.root_passphrase is not None:
        local = LocalKeyProvider(keyring, passphrase=settings.root_passphrase.get_secret_value())
    else:
        root = create_root_key(settings) if create else load_root_key(settings)
        local = LocalKeyProvider(keyring, root_key=root)
    cache = DataKeyCache(
        max_keys=settings.data_key_cache_size, ttl_seconds=settings.data_key_cache_ttl_seconds
    )
    return KeyHierarchy(ProviderRegistry(settings, local), cache)


class Runtime:
    def __init__(
        self, settings: Settings, db: Database, keys: KeyHierarchy, audit: AuditLog
    ) -> None:
        self.settings = settings
        self.db = db
        self.keys = keys
        #: Sealed objects (recordings), per deployment region.
        self.objects = ObjectStores({}, data_dir=settings.data_dir)
        self.sealer: Sealer = EnvelopeSealer(keys)
        self.audit = audit
        self.gate = Gate(default_authorizer(), audit)
        #: Card security codes captured on live calls, in memory until their hand-off.
        self.cvv_holds = CvvHolds()
        #: SIEM sinks per tenant, fed by a background dispatcher (never the request path).
        self.sinks = SinkStore(db, self.sealer)
        self.dispatcher = SinkDispatcher(
            cursors=SinkCursors(db),
            targets=self.sinks.targets,
            read=self._read_log,
            origin=self._log_origin,
            size=self._log_size,
        )

    def _read_log(self, tenant_id: str, start: int, limit: int) -> list[tuple[int, bytes]]:
        with self.db.tenant_tx(tenant_id) as s:
            return self.audit.read(s, tenant_id, start=start, limit=limit)

    def _log_origin(self, tenant_id: str) -> str:
        with self.db.tenant_tx(tenant_id) as s:
            return self.audit.keys.public(s, tenant_id)[0]

    def _log_size(self, tenant_id: str) -> int:
        with self.db.tenant_tx(tenant_id) as s:
            return self.audit.size(s, tenant_id)

    def start_background(self) -> None:
        """Checkpoint schedule and SIEM delivery (the service starts them; the CLI does not)."""
        self.audit.start()
        self.dispatcher.start()

    @classmethod
    def open(
        cls, settings: Settings, *, create_key: bool = False, migrate: bool | None = None
    ) -> Runtime:
        """Build and check every part; raise :class:`callvault.errors.Error` if one is unusable."""
        # Keys first: without them nothing may be touched (no migration of a
        # data directory that was never initialised).
        keys = build_keys(settings, create=create_key)
        keys.check()
        objects = ObjectStores(
            parse_object_stores(settings.object_stores), data_dir=settings.data_dir
        )
        objects.check()
        default_authorizer()  # parse and validate the policy set now, not on first request
        db = Database(settings)
        try:
            db.check()
            db.check_role()
            if settings.auto_migrate if migrate is None else migrate:
                db.migrate()
            db.check_audit_privileges()
        except Error:
            db.dispose()
            raise
        runtime = cls(settings, db, keys, AuditLog(db, EnvelopeSealer(keys), settings))
        runtime.objects = objects
        return runtime

    def readiness(self) -> Readiness:
        checks: dict[str, bool] = {}
        for name, probe in (
            ("database", self.db.check),
            ("keys", self.sealer.check),
            ("audit", self.audit.check),
        ):
            try:
                probe()
                checks[name] = True
            except (Error, UnavailableError):
                checks[name] = False
        try:
            backlog = self.dispatcher.backlog()
            sinks = {
                "sinks": len(backlog),
                "backlog": sum(backlog.values()),
                "failing": sum(1 for n in self.dispatcher.failures().values() if n),
            }
        except Exception:  # noqa: BLE001 - delivery state is detail; it never decides readiness
            sinks = {"unknown": 1}
        return Readiness(ready=all(checks.values()), checks=checks, sinks=sinks)

    def close(self) -> None:
        self.dispatcher.stop()
        self.sinks.close()
        self.audit.close()
        self.db.dispose()
