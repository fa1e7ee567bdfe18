"""Security codes captured on live calls, held in memory until their card's hand-off.

A caller keys the card's security code after the card number; the ingest
path wraps it in an :class:`~callvault.payments.EphemeralCvv` (usable once,
wiped at its deadline) and holds it here under the card's token. The
payment operator's hand-off of that token takes it (:meth:`CvvHolds.take`)
and passes it to the connector with the card number; nothing else can read
it, and it is never written anywhere.

The holds are this process's memory: a hand-off served by another worker
process finds none and goes without a security code (the connector decides
whether that is enough). At most :data:`MAX_HELD` are held; holding one more
wipes the oldest. Keys are (tenant, token): a token id of another tenant
never matches.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Final

from callvault.payments._cvv import EphemeralCvv

MAX_HELD: Final = 10_000


class CvvHolds:
    def __init__(self, max_held: int = MAX_HELD) -> None:
        self._held: OrderedDict[tuple[str, str], EphemeralCvv] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_held

    def hold(self, tenant_id: str, token_id: str, cvv: EphemeralCvv) -> None:
        """Hold ``cvv`` for the hand-off of ``token_id`` (a previous one is wiped)."""
        with self._lock:
            old = self._held.pop((tenant_id, token_id), None)
            self._held[(tenant_id, token_id)] = cvv
            evicted = []
            while len(self._held) > self._max:
                evicted.append(self._held.popitem(last=False)[1])
        for gone in ([old] if old is not None else []) + evicted:
            gone.wipe()

    def take(self, tenant_id: str, token_id: str) -> EphemeralCvv | None:
        """The held code of ``token_id`` if still usable (it leaves the holds either way)."""
        with self._lock:
            cvv = self._held.pop((tenant_id, token_id), None)
        if cvv is None or not cvv.available:
            return None
        return cvv

    def __len__(self) -> int:
        with self._lock:
            return len(self._held)
