"""The one clock break-glass decisions read (tests replace :data:`now` to move time).

Expiry is checked against it on every request; nothing else keeps time for
break-glass, so no background job is needed for access to end.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from callvault.store.models import utcnow

#: Call as ``_clock.now()`` (module attribute), so a test's replacement is seen.
now: Callable[[], datetime] = utcnow
