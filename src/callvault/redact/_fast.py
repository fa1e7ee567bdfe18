"""Find a mypyc-compiled build of a hot module set, if it is installed and current.

``scripts/build-redact-fast`` copies each build's modules into a package of
its own (``callvault_redact_fast``: the redaction engine's core;
``callvault_dtmf_fast``: the in-band DTMF detector), rewrites their imports
of one another, compiles the package with mypyc and installs it with the
SHA-256 of the sources it was built from. A build is used only when that
hash equals the hash of the modules in this tree, so an edited source never
runs as a stale binary. Each build has an environment switch that forces
the interpreted modules (``CV_REDACT_PURE=1``, ``CV_DTMF_PURE=1``; tests
comparing the two use them).
"""

from __future__ import annotations

import hashlib
import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

_SRC = Path(__file__).resolve().parent.parent  # src/callvault


@dataclass(frozen=True)
class FastBuild:
    """One set of modules compiled together into ``package``."""

    #: The installed package (top level in site-packages).
    package: str
    #: The package the sources live in, e.g. ``callvault.redact``.
    source: str
    #: The modules compiled together, in dependency order.
    modules: tuple[str, ...]
    #: ``<pure_env>=1`` forces the interpreted modules.
    pure_env: str

    @property
    def source_dir(self) -> Path:
        return _SRC.joinpath(*self.source.split(".")[1:])

    def source_hash(self) -> str:
        """SHA-256 over the compiled modules' names and bytes, as they are in this tree."""
        digest = hashlib.sha256()
        for name in self.modules:
            digest.update(name.encode() + b"\0")
            digest.update((self.source_dir / f"{name}.py").read_bytes())
            digest.update(b"\0")
        return digest.hexdigest()

    def load(self, module: str, digest: str | None = None) -> ModuleType | None:
        """The compiled ``module`` when installed and built from these exact sources, else None."""
        if os.environ.get(self.pure_env) == "1":
            return None
        try:
            package = importlib.import_module(self.package)
        except ImportError:
            return None
        if getattr(package, "SOURCE_HASH", None) != (digest or self.source_hash()):
            return None
        try:
            return importlib.import_module(f"{self.package}.{module}")
        except ImportError:
            return None


_REDACT_MODULES = ("_lexicon", "_checks", "_tokens", "_context", "_dates", "_numbers",
                   "_numeric", "_textual", "_core")  # fmt: skip
REDACT_BUILD = FastBuild(
    package="callvault_redact_fast",
    source="callvault.redact",
    modules=_REDACT_MODULES,
    pure_env="CV_REDACT_PURE",
)
DTMF_BUILD = FastBuild(
    package="callvault_dtmf_fast",
    source="callvault.calls",
    modules=("_dtmf",),
    pure_env="CV_DTMF_PURE",
)
#: Every build ``scripts/build-redact-fast`` makes.
BUILDS = (REDACT_BUILD, DTMF_BUILD)

#: The redaction engine's build, as named before the builds were generalised.
MODULES = REDACT_BUILD.modules
FAST_PACKAGE = REDACT_BUILD.package


def source_hash() -> str:
    """SHA-256 of the redaction core's compiled modules, as they are in this tree."""
    return REDACT_BUILD.source_hash()


def compiled_core() -> ModuleType | None:
    """The compiled ``_core`` when installed and built from these exact sources, else None."""
    return REDACT_BUILD.load("_core", source_hash())
