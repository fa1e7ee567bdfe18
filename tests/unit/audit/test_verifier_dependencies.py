"""The offline verifier is usable as a library that depends on `cryptography` alone."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_verifier_loads_no_service_stack() -> None:
    code = (
        "import sys\n"
        "import callvault.audit.verify, callvault.audit.note, callvault.audit.checkpoint\n"
        "import callvault.audit.bundle\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        "print(sorted(loaded & {'sqlalchemy', 'fastapi', 'pydantic', 'rfc8785', 'cedarpy',"
        " 'starlette', 'httpx', 'boto3', 'argon2'}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
