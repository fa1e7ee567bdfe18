"""Find the mypyc-compiled build of the engine core, if it is installed and current.

``scripts/build-redact-fast`` copies the core's modules into a package
``callvault_redact_fast`` (imports rewritten), compiles it with mypyc and
installs it with the SHA-256 of the sources it was built from. The build is
used only when that hash equals the hash of the modules in this tree, so an
edited source never runs as a stale binary. ``CV_REDACT_PURE=1``
forces the interpreted core (used by tests comparing the two).
"""

from __future__ import annotations

import hashlib
import importlib
import os
from pathlib import Path
from types import ModuleType

#: The modules compiled together, in dependency order.
MODULES = ("_lexicon", "_checks", "_tokens", "_context", "_dates", "_numbers", "_numeric",
           "_textual", "_core")  # fmt: skip
FAST_PACKAGE = "callvault_redact_fast"


def source_hash() -> str:
    """SHA-256 over the compiled modules' names and bytes, as they are in this tree."""
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for name in MODULES:
        digest.update(name.encode() + b"\0")
        digest.update((here / f"{name}.py").read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def compiled_core() -> ModuleType | None:
    """The compiled ``_core`` when installed and built from these exact sources, else None."""
    if os.environ.get("CV_REDACT_PURE") == "1":
        return None
    try:
        package = importlib.import_module(FAST_PACKAGE)
    except ImportError:
        return None
    if getattr(package, "SOURCE_HASH", None) != source_hash():
        return None
    try:
        return importlib.import_module(f"{FAST_PACKAGE}._core")
    except ImportError:
        return None
