"""The app's SSO adapters and egress guard, made once per app at first use.

Every fetch to a URL a tenant administrator gave (IdP metadata, OIDC
discovery, key sets and token endpoints) goes through one egress guard: the
installation's (``CALLVAULT_EGRESS_*``) unless a test installed its own on
``app.state.sso_egress_guard``. The adapters are made once per app so the
OIDC adapter's discovery and key caches live as long as the app; tests may
install their own on ``app.state.sso_adapters``. Nothing a tenant sends
reaches either hook.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Final

from fastapi import Request

from callvault import sso
from callvault.egress import EgressGuard
from callvault.runtime import Runtime

_LOCK: Final = threading.Lock()


def egress_guard(request: Request) -> EgressGuard:
    """The guard for tenant-supplied URLs."""
    guard = getattr(request.app.state, "sso_egress_guard", None)
    if isinstance(guard, EgressGuard):
        return guard
    rt: Runtime = request.app.state.runtime
    return EgressGuard.from_settings(rt.settings)


def sso_adapters(request: Request) -> Mapping[str, sso.SsoAdapter]:
    """The app's adapters (the OIDC one fetching through :func:`egress_guard`)."""
    state = request.app.state
    adapters: Mapping[str, sso.SsoAdapter] | None = getattr(state, "sso_adapters", None)
    if adapters is None:
        with _LOCK:
            adapters = getattr(state, "sso_adapters", None)
            if adapters is None:
                adapters = state.sso_adapters = sso.build_adapters(egress_guard(request))
    return adapters
