"""Fixtures for the payments vault: a recording HTTPS processor, a vault, grants through the gate.

The processor is ``http.server`` behind ``ssl`` with a self-signed certificate
made for 127.0.0.1 (``cryptography``, through ``callvault.crypto.hazmat``); it
records every request it receives and answers from a script.

No shipped role has ``payments:detokenize`` (a ``payment_operator`` role is to
come), so :class:`Cards` gives the ``ingest`` role that action in
``ROLE_ACTIONS`` for the test only, builds an authorizer over the shipped
policy set from it, and puts a gate with that authorizer on the runtime.
Grants still come only from ``rt.gate.enforce``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files

import pytest

from callvault.access import (
    ROLE_ACTIONS,
    Action,
    Authorizer,
    Binding,
    Gate,
    Grant,
    Principal,
    Resource,
    Role,
    ScopeKind,
)
from callvault.payments import TokenVault
from callvault.runtime import Runtime
from tests.support.processor import (
    Processor,
    running_processor,
)
from tests.support.world import World


@pytest.fixture(scope="module")
def https_processor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processor]:
    with running_processor(tmp_path_factory.mktemp("processor")) as processor:
        yield processor


@pytest.fixture
def processor(https_processor: Processor) -> Processor:
    https_processor.seen.clear()
    https_processor.script.clear()
    return https_processor


@pytest.fixture
def vault(rt: Runtime) -> TokenVault:
    return TokenVault(rt.keys, rt.audit)


@dataclass
class Cards:
    """Ids of tenant A's first two calls (one per deployment) and tenant B's first call."""

    rt: Runtime
    world: World

    @property
    def tenant(self) -> str:
        return self.world.a.id

    def call(self, n: int = 0) -> tuple[str, str, str]:
        """(deployment, agent, call) of tenant A's call ``n``."""
        a = self.world.a
        return a.deployments[n], a.agents[n], a.calls[n]

    def operator(self, n: int = 0) -> Principal:
        """Tenant A's deployment-``n``-wide ingest principal, here also the payment operator."""
        dep = self.world.a.deployments[n]
        return Principal(
            id=self.world.a.principals[("ingest", "tenant")],
            tenant_id=self.tenant,
            kind="service",
            active=True,
            bindings=frozenset({Binding(Role.INGEST, ScopeKind.DEPLOYMENT, dep)}),
        )

    def resource(self, n: int = 0) -> Resource:
        dep, agent, call = self.call(n)
        return Resource.call(self.tenant, dep, agent, call)

    def grant(self, n: int = 0, action: Action = Action.PAYMENTS_DETOKENIZE) -> Grant:
        return self.rt.gate.enforce(
            self.operator(n), action, self.resource(n), request_id=f"req-{action.value}-{n}"
        )


@pytest.fixture
def cards(rt: Runtime, world: World, monkeypatch: pytest.MonkeyPatch) -> Cards:
    monkeypatch.setitem(
        ROLE_ACTIONS, Role.INGEST, ROLE_ACTIONS[Role.INGEST] | {Action.PAYMENTS_DETOKENIZE}
    )
    policies = (files("callvault.access") / "policies.cedar").read_text(encoding="utf-8")
    monkeypatch.setattr(rt, "gate", Gate(Authorizer(policies), rt.audit))
    return Cards(rt, world)
