"""Every transparency-dev/merkle proof vector gets its ``wantErr`` from our verifier.

The cases live in ``tests/vectors/rfc9162`` (copied from transparency-dev/merkle
``testdata/`` at commit 417fb0c, Apache-2.0; see the LICENSE and README there).
Each JSON file is one inclusion or one consistency case; ``wantErr: true``
means a correct RFC 9162 verifier MUST reject it, which for us means exactly
one :class:`ProofError` and nothing else.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from callvault.audit.merkle import verify_consistency, verify_inclusion
from callvault.errors import ProofError

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "rfc9162"
INCLUSION = sorted((VECTORS / "inclusion").rglob("*.json"))
CONSISTENCY = sorted((VECTORS / "consistency").rglob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return case


def _b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def _proof(case: dict[str, Any]) -> list[bytes]:
    return [_b64(p) for p in case["proof"] or []]


def _id(path: Path) -> str:
    return path.relative_to(VECTORS).as_posix()


def _outcome(check: Any, *args: Any) -> bool:
    """True when ``check`` rejected the case (with ProofError, and only that)."""
    try:
        check(*args)
    except ProofError:
        return True
    return False


def test_the_vector_set_is_complete() -> None:
    # 196 cases, 12 of them valid: losing files in a copy must not pass silently.
    cases = [_load(p) for p in INCLUSION + CONSISTENCY]
    assert len(cases) == 196
    assert sum(not c["wantErr"] for c in cases) == 12


@pytest.mark.parametrize("path", INCLUSION, ids=_id)
def test_inclusion_vector(path: Path) -> None:
    case = _load(path)
    rejected = _outcome(
        verify_inclusion,
        case["leafIdx"],
        case["treeSize"],
        _b64(case["leafHash"]),
        _proof(case),
        _b64(case["root"]),
    )
    assert rejected is case["wantErr"], case["desc"]


@pytest.mark.parametrize("path", CONSISTENCY, ids=_id)
def test_consistency_vector(path: Path) -> None:
    case = _load(path)
    rejected = _outcome(
        verify_consistency,
        case["size1"],
        case["size2"],
        _b64(case["root1"]),
        _b64(case["root2"]),
        _proof(case),
    )
    assert rejected is case["wantErr"], case["desc"]
