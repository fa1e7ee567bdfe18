"""The mypyc build of the engine core: same answers as the interpreted core, never stale."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from callvault.redact import _core, _fast
from callvault.redact._engine import CORE

DATA = Path(__file__).resolve().parents[2] / "data" / "redact"


def _compiled() -> object:
    core = _fast.compiled_core()
    if core is None:
        if os.environ.get("CV_TEST_REQUIRE_FAST") == "1":
            pytest.fail("compiled redaction core missing or stale: run scripts/build-redact-fast")
        pytest.skip("compiled redaction core not built (scripts/build-redact-fast)")
    return core


def test_the_engine_uses_the_compiled_core_when_current() -> None:
    compiled = _compiled()
    assert CORE is compiled


def test_compiled_and_interpreted_cores_agree_on_the_labelled_data() -> None:
    compiled = _compiled()
    texts = [json.loads(line)["text"] for line in (DATA / "dev.jsonl").open()][:1500]
    texts += ["", " ", "my card number is four one one one", "john dot smith", "x" * 200]
    for text in texts:
        assert compiled.find_candidates(text) == _core.find_candidates(text)  # type: ignore[attr-defined]
        assert compiled.open_tail(text) == _core.open_tail(text)  # type: ignore[attr-defined]
        assert compiled.pending_entity(text, len(text) // 2) == _core.pending_entity(  # type: ignore[attr-defined]
            text, len(text) // 2
        )


def test_a_stale_build_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    _compiled()
    monkeypatch.setattr(_fast, "source_hash", lambda: "0" * 64)
    assert _fast.compiled_core() is None


def test_the_pure_switch_forces_the_interpreted_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CV_REDACT_PURE", "1")
    assert _fast.compiled_core() is None


def test_the_source_hash_covers_every_compiled_module(tmp_path: Path) -> None:
    here = Path(_core.__file__).parent
    assert all((here / f"{name}.py").exists() for name in _fast.MODULES)
    assert len(_fast.source_hash()) == 64
