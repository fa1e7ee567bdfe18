"""A throwaway SoftHSM2 for the PKCS#11 tests.

:meth:`SoftHsm.start` does, in order:

1. Find ``softhsm2-util`` and the module (``CV_TEST_SOFTHSM_MODULE``, else
   Debian's ``/usr/lib/softhsm/libsofthsm2.so``, else other usual places),
   resolved to its real path: python-pkcs11 loads a module once per path
   string, and a second string for the same library would initialise it twice.
2. Write a ``softhsm2.conf`` in the given directory whose ``tokendir`` is
   inside it, so nothing touches ``/var/lib/softhsm``.
3. ``softhsm2-util --init-token --free`` for each label, with
   ``SOFTHSM2_CONF`` in that subprocess's environment only.
4. Load the module in this process with ``SOFTHSM2_CONF`` set around
   ``C_Initialize`` only (SoftHSM2 reads its configuration there and never
   again, and sees only tokens that exist by then), then restore the
   environment. A module already initialised in this process with another
   configuration is initialised again.

Debian: ``apt-get install softhsm2``. One SoftHSM per test process: with
pytest-xdist each worker has its own directory and tokens.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pkcs11
from pkcs11 import NoSuchToken
from pkcs11.types import Session

_MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
_TIMEOUT_S = 60


class SoftHsmUnavailableError(Exception):
    """SoftHSM2 (its module or ``softhsm2-util``) is not on this machine."""


def find_module() -> Path:
    env = os.environ.get("CV_TEST_SOFTHSM_MODULE")
    for candidate in ([env] if env else []) + list(_MODULE_CANDIDATES):
        if Path(candidate).is_file():
            return Path(candidate).resolve()
    raise SoftHsmUnavailableError(
        "SoftHSM2 not found (apt-get install softhsm2, or set CV_TEST_SOFTHSM_MODULE)"
    )


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


@dataclass(frozen=True)
class SoftHsm:
    """Initialised tokens (all with the same PINs) in a private token directory."""

    module: Path
    conf: Path
    user_pin: str
    so_pin: str

    @classmethod
    def start(cls, root: Path, labels: tuple[str, ...], *, user_pin: str, so_pin: str) -> SoftHsm:
        """Steps (1)-(4) of the module docstring."""
        # (1)
        module = find_module()
        util = shutil.which("softhsm2-util")
        if util is None:
            raise SoftHsmUnavailableError("softhsm2-util not found (apt-get install softhsm2)")
        # (2)
        (root / "tokens").mkdir(mode=0o700)
        conf = root / "softhsm2.conf"
        conf.write_text(
            f"directories.tokendir = {root / 'tokens'}\n"
            "objectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
        )
        hsm = cls(module=module, conf=conf, user_pin=user_pin, so_pin=so_pin)
        # (3)
        for label in labels:
            subprocess.run(
                [
                    util,
                    "--init-token",
                    "--free",
                    "--label",
                    label,
                    "--pin",
                    user_pin,
                    "--so-pin",
                    so_pin,
                ],
                env={**os.environ, "SOFTHSM2_CONF": str(conf)},
                capture_output=True,
                text=True,
                timeout=_TIMEOUT_S,
                check=True,
            )
        # (4)
        with _env("SOFTHSM2_CONF", str(conf)):
            lib = pkcs11.lib(str(module))
            try:
                for label in labels:
                    lib.get_token(token_label=label)
            except NoSuchToken:
                lib.reinitialize()
        return hsm

    def restart(self) -> None:
        """Finalise and initialise the module again: every session and login is lost."""
        with _env("SOFTHSM2_CONF", str(self.conf)):
            pkcs11.lib(str(self.module)).reinitialize()

    @contextmanager
    def session(self, label: str) -> Iterator[Session]:
        """A read/write session without logging in: it sees private objects only while
        the process is logged in to the token (a provider's ``ready()`` does that)."""
        token = pkcs11.lib(str(self.module)).get_token(token_label=label)
        with token.open(rw=True) as session:
            yield session
