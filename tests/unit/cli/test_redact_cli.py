"""``callvault redact --jsonl``: a streaming filter that answers every line and names bad ones."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from callvault.cli import app
from callvault.config import load_settings
from callvault.errors import ConfigError
from callvault.redact import Redactor

runner = CliRunner()
CARD = "4111 1111 1111 1111"
SECRET = "Secretname"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"CALLVAULT_DATA_DIR": str(tmp_path / "data"), **extra}


def redact(tmp_path: Path, data: bytes, *args: str, **env: str) -> Result:
    result = runner.invoke(app, ["redact", "--jsonl", *args], input=data, env=_env(tmp_path, **env))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists(), "redact must not create a data directory"
    return result


def records(result: Result) -> list[dict[str, Any]]:
    return [json.loads(x) for x in result.stdout_bytes.splitlines()]


def line(id_: object, text: str) -> bytes:
    return json.dumps({"id": id_, "text": text}).encode() + b"\n"


def test_clean_stream_exits_0_with_one_compact_line_per_input(tmp_path: Path) -> None:
    text = "card " + CARD + " please"
    result = redact(tmp_path, line("a", text) + line(2, "hello"))
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout_bytes.splitlines()
    assert len(out) == 2
    assert b": " not in out[1]  # compact separators
    first, second = records(result)
    assert first["id"] == "a"
    assert first["redacted"] == Redactor().redact(text)
    assert CARD not in first["redacted"]
    assert [(f["start"], f["end"], f["entity"]) for f in first["findings"]] == [
        (f.start, f.end, f.entity) for f in Redactor().find(text)
    ]
    assert second == {"id": 2, "redacted": "hello", "findings": []}


def test_invalid_utf8_on_line_3_of_5_names_line_3_and_answers_the_others(tmp_path: Path) -> None:
    bad = b'{"id": "c", "text": "' + SECRET.encode() + b' \xc3\x28 here"}\n'
    data = line("a", "one") + line("b", "two") + bad + line("d", "four") + line("e", "five")
    result = redact(tmp_path, data)
    assert result.exit_code == 1
    out = records(result)
    assert [r["id"] for r in out] == ["a", "b", None, "d", "e"]
    assert out[2] == {"id": None, "line": 3, "error": "invalid-utf8"}
    assert [r["redacted"] for r in out if "redacted" in r] == ["one", "two", "four", "five"]
    err = result.stderr.splitlines()
    assert err[0].startswith("callvault: line 3: not valid UTF-8")
    assert err[-1] == "callvault: 1 of 5 lines failed"
    assert len(err) == 2
    assert SECRET not in result.stderr


def test_a_5mb_line_is_refused_and_the_stream_goes_on(tmp_path: Path) -> None:
    huge = b'{"id": "big", "text": "' + b"5" * (5 * 1024 * 1024) + b'"}\n'
    result = redact(tmp_path, line(1, "a") + huge + line(3, "c"))
    assert result.exit_code == 1
    assert records(result) == [
        {"id": 1, "redacted": "a", "findings": []},
        {"id": None, "line": 2, "error": "line-too-long"},
        {"id": 3, "redacted": "c", "findings": []},
    ]
    assert "callvault: line 2: line longer than" in result.stderr
    assert len(result.stderr) < 200


def test_empty_text_bom_and_crlf_are_accepted(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf" + b'{"id": 1, "text": ""}\r\n{"id": 2, "text": "x"}\r\n'
    result = redact(tmp_path, data)
    assert result.exit_code == 0, result.stderr
    assert records(result) == [
        {"id": 1, "redacted": "", "findings": []},
        {"id": 2, "redacted": "x", "findings": []},
    ]


def test_blank_lines_are_answered_as_errors(tmp_path: Path) -> None:
    result = redact(tmp_path, line(1, "a") + b"\n" + b"  \r\n" + line(4, "d"))
    assert result.exit_code == 1
    assert [r.get("error") for r in records(result)] == [None, "blank-line", "blank-line", None]
    assert "callvault: 2 of 4 lines failed" in result.stderr


def test_malformed_json_is_named_and_not_the_end_of_the_stream(tmp_path: Path) -> None:
    data = line(1, "a") + b'{"id": 2, "text": "' + SECRET.encode() + b"\n" + line(3, "c")
    result = redact(tmp_path, data)
    assert result.exit_code == 1
    assert [r.get("error") for r in records(result)] == [None, "invalid-json", None]
    assert "callvault: line 2: not valid JSON" in result.stderr
    assert SECRET not in result.stderr


def test_max_chars_comes_from_the_option_or_the_setting(tmp_path: Path) -> None:
    data = line("long", "x" * 11) + line("ok", "x" * 10)
    for result in (
        redact(tmp_path, data, "--max-chars", "10"),
        redact(tmp_path, data, CALLVAULT_REDACT_MAX_CHARS="10"),
    ):
        assert result.exit_code == 1
        assert records(result)[0] == {"id": "long", "line": 1, "error": "text-too-long"}
        assert "exceeds the limit of 10" in result.stderr
    assert redact(tmp_path, data).exit_code == 0


def test_a_bad_max_chars_setting_is_exit_78_naming_the_variable(tmp_path: Path) -> None:
    result = redact(tmp_path, b"", CALLVAULT_REDACT_MAX_CHARS="0")
    assert result.exit_code == 78
    assert "CALLVAULT_REDACT_MAX_CHARS" in result.stderr
    with pytest.raises(ConfigError, match="CALLVAULT_REDACT_MAX_CHARS"):
        load_settings({"CALLVAULT_REDACT_MAX_CHARS": "-5"})
    assert load_settings({}).redact_max_chars == 65_536


def test_max_chars_option_below_1_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["redact", "--jsonl", "--max-chars", "0"], env=_env(tmp_path))
    assert result.exit_code == 2


def test_without_jsonl_the_command_says_what_it_reads(tmp_path: Path) -> None:
    result = runner.invoke(app, ["redact"], input=b"x\n", env=_env(tmp_path))
    assert result.exit_code == 64
    assert result.stderr.strip() == "callvault: redact reads JSON Lines only: pass --jsonl"


def test_pseudonyms_are_stable_across_the_stream(tmp_path: Path) -> None:
    text = "card " + CARD
    if not Redactor().find(text):
        pytest.skip("the engine finds no card here")
    result = redact(tmp_path, line(1, text) + line(2, "again " + CARD), "--pseudonyms")
    assert [r["redacted"] for r in records(result)] == [
        "card [CARD_NUMBER_1]",
        "again [CARD_NUMBER_1]",
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=8))
def test_fuzz_random_byte_lines_never_a_traceback_and_one_answer_each(lines: list[bytes]) -> None:
    data = b"".join(x + b"\n" for x in lines)
    result = runner.invoke(app, ["redact", "--jsonl", "--max-chars", "30"], input=data)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.stderr
    out = records(result)
    assert len(out) == len(lines)
    failed = sum("error" in r for r in out)
    assert result.exit_code == (1 if failed else 0)
    if failed:
        assert result.stderr.splitlines()[-1] == f"callvault: {failed} of {len(lines)} lines failed"


def _command() -> list[str]:
    script = Path(sys.executable).parent / "callvault"
    if script.exists():
        return [str(script)]
    found = shutil.which("callvault")
    return [found] if found else [sys.executable, "-m", "callvault.cli"]


def test_answers_stream_through_a_pipe_one_line_at_a_time(tmp_path: Path) -> None:
    env = {**os.environ, **_env(tmp_path)}
    proc = subprocess.Popen(
        [*_command(), "redact", "--jsonl"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    answers: queue.Queue[bytes] = queue.Queue()
    stdout = proc.stdout
    reader = threading.Thread(target=lambda: [answers.put(x) for x in stdout], daemon=True)
    reader.start()
    try:
        # Each answer must arrive while stdin is still open: nothing waits for EOF.
        for i, data in enumerate([line(1, "card " + CARD), b"not json\n", line(3, "bye")]):
            proc.stdin.write(data)
            proc.stdin.flush()
            answer = json.loads(answers.get(timeout=60))
            assert answer.get("id") == (None if i == 1 else i + 1)
        proc.stdin.close()
        assert proc.wait(timeout=60) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    assert "Traceback" not in err
    assert err.splitlines() == [
        "callvault: line 2: not valid JSON",
        "callvault: 1 of 3 lines failed",
    ]
