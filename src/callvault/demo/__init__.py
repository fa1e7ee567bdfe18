"""``callvault demo``: a demo deployment seeded with synthesised calls, for a first look.

:func:`run_demo` makes (or reuses) a deployment and an agent named ``demo``,
a QA reviewer and a compliance officer with keys, streams three espeak-ng
calls through the generic live-ingest stream (audio, the recogniser's
interim and final segments, keypad reports), and reads
them back as each reviewer; :func:`format_report` prints that and the
commands to read them yourself. Everything goes through the running
server's API with the owner's key: nothing here opens the data directory.
"""

from __future__ import annotations

from callvault.demo._http import Target, resolve_target
from callvault.demo._report import format_report
from callvault.demo._run import DemoCall, DemoResult, run_demo
from callvault.demo._scripts import KEYED_CARD, SCRIPTS, SPOKEN_CARD
from callvault.demo._speech import find_espeak

__all__ = [
    "KEYED_CARD",
    "SCRIPTS",
    "SPOKEN_CARD",
    "DemoCall",
    "DemoResult",
    "Target",
    "find_espeak",
    "format_report",
    "resolve_target",
    "run_demo",
]
