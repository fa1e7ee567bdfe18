"""``callvault audit verify``: a verdict line per outcome, exit 0/1/2, never a traceback.

The command is what customers run offline, so it must work with no data
directory, database or valid settings, and must not open the runtime.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from callvault.audit.bundle import CHECKPOINT_FILE, ENTRIES_FILE, KEY_FILE, MANIFEST_FILE
from callvault.cli import app
from tests.unit.audit.test_bundle import (
    IMPOSTOR,
    KEY,
    MARKER,
    ORIGIN,
    entries,
    entry,
    lines_of,
    make_bundle,
    note_for,
    set_lines,
)

runner = CliRunner()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    # Settings that would stop any command that loads them: verify must not.
    return {
        "CALLVAULT_DATA_DIR": str(tmp_path / "data"),
        "CALLVAULT_DATABASE_URL": "mysql://nope",
        "CALLVAULT_PORT": "not-a-port",
        **extra,
    }


def verify(tmp_path: Path, *args: str) -> Result:
    result = runner.invoke(app, ["audit", "verify", *args], env=_env(tmp_path))
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "data").exists()
    return result


def failed_lines(result: Result) -> list[str]:
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines
    for line in lines:
        assert line.startswith("FAILED: "), line
        assert MARKER not in line
    return lines


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return make_bundle(tmp_path / "bundle", entries(40))


def test_a_good_bundle_prints_one_ok_line_and_exits_0(tmp_path: Path, bundle: Path) -> None:
    result = verify(tmp_path, str(bundle))
    assert result.exit_code == 0
    (line,) = result.stdout.splitlines()
    assert line.startswith(f"OK: {ORIGIN} size 40 root ")
    assert "not pinned" in line
    assert result.stderr.startswith("WARNING: ")  # nothing vouched for the key


def test_a_pinned_key_string_or_file(tmp_path: Path, bundle: Path) -> None:
    result = verify(tmp_path, str(bundle), "--trusted-key", KEY)
    assert result.exit_code == 0
    assert "the trusted key" in result.stdout
    assert result.stderr == ""
    key_file = tmp_path / "log.key"
    key_file.write_text(KEY + "\n")
    assert verify(tmp_path, str(bundle), "--trusted-key", str(key_file)).exit_code == 0


def test_a_pinned_checkpoint(tmp_path: Path, bundle: Path) -> None:
    pinned = tmp_path / "pinned.txt"
    pinned.write_bytes(note_for(entries(40)[:25]))
    result = verify(tmp_path, str(bundle), "--trusted-checkpoint", str(pinned))
    assert result.exit_code == 0
    (line,) = result.stdout.splitlines()
    assert line.endswith("; consistent with trusted checkpoint at size 25")
    assert result.stderr == ""


def test_an_edited_entry_fails_with_exit_1(tmp_path: Path, bundle: Path) -> None:
    ls = lines_of(bundle)
    set_lines(bundle, [*ls[:7], ls[7].replace(b"prn_000007", b"prn_000008"), *ls[8:]])
    (line,) = failed_lines(verify(tmp_path, str(bundle)))
    assert line.startswith("FAILED: root-mismatch: the 40 entries hash to ")


def test_every_failure_gets_its_own_line(tmp_path: Path, bundle: Path) -> None:
    ls = lines_of(bundle)
    set_lines(bundle, ls[:-1], seal=False)
    lines = failed_lines(verify(tmp_path, str(bundle), "--trusted-key", KEY))
    assert [ln.split(":")[1].strip() for ln in lines] == ["size-mismatch", "manifest-mismatch"]


def test_a_forked_history_re_signed_with_another_key(tmp_path: Path) -> None:
    forked = [*entries(40)[:10], entry(10, "call.forged"), *entries(40)[11:]]
    path = make_bundle(tmp_path / "forked", forked, signer=IMPOSTOR)
    lines = failed_lines(verify(tmp_path, str(path), "--trusted-key", KEY))
    assert lines[0].startswith("FAILED: untrusted-key: ")


def test_a_stale_bundle(tmp_path: Path) -> None:
    path = make_bundle(tmp_path / "old", entries(20))
    pinned = tmp_path / "pinned.txt"
    pinned.write_bytes(note_for(entries(30)))
    (line,) = failed_lines(verify(tmp_path, str(path), "--trusted-checkpoint", str(pinned)))
    assert line.startswith("FAILED: stale-bundle: ")


def test_a_checkpoint_with_a_bad_signature(tmp_path: Path, bundle: Path) -> None:
    note = bytearray((bundle / CHECKPOINT_FILE).read_bytes())
    note[-10] ^= 1
    (bundle / CHECKPOINT_FILE).write_bytes(bytes(note))
    lines = failed_lines(verify(tmp_path, str(bundle)))
    assert lines[0].startswith("FAILED: bad-checkpoint: ")


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"\x00" * 100,
        bytes(range(256)) * 4,
        b"\xff\xfe" + "日本".encode("utf-16"),
        b"{" * 5000 + b"\n",
        b"\n" * 1000,
        b"\r\n",
    ],
)
@pytest.mark.parametrize("name", [ENTRIES_FILE, CHECKPOINT_FILE, KEY_FILE, MANIFEST_FILE])
def test_garbage_in_any_file_is_a_failed_line(
    tmp_path: Path, bundle: Path, name: str, garbage: bytes
) -> None:
    (bundle / name).write_bytes(garbage)
    failed_lines(verify(tmp_path, str(bundle)))


def test_a_huge_line(tmp_path: Path, bundle: Path) -> None:
    (bundle / ENTRIES_FILE).write_bytes(b"{" * (5 * 1024 * 1024))
    (line,) = failed_lines(verify(tmp_path, str(bundle)))
    assert "longer than any entry may be" in line


def test_missing_and_wrong_files(tmp_path: Path, bundle: Path) -> None:
    (bundle / KEY_FILE).unlink()
    (bundle / MANIFEST_FILE).unlink()
    (bundle / MANIFEST_FILE).symlink_to(bundle / CHECKPOINT_FILE)
    lines = failed_lines(verify(tmp_path, str(bundle)))
    assert lines == [
        f"FAILED: not-a-regular-file: {MANIFEST_FILE} is a symbolic link",
        f"FAILED: missing-file: {KEY_FILE} is missing",
    ]


@pytest.mark.parametrize("kind", ["missing", "file", "empty-dir"])
def test_not_a_bundle_directory(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "x"
    if kind == "file":
        path.write_bytes(b"\x00\x01")
    elif kind == "empty-dir":
        path.mkdir()
    failed_lines(verify(tmp_path, str(path)))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any directory")
def test_an_unreadable_directory(tmp_path: Path, bundle: Path) -> None:
    bundle.chmod(0)
    try:
        failed_lines(verify(tmp_path, str(bundle)))
    finally:
        bundle.chmod(0o700)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--no-such-option", "x"],
        ["{bundle}", "--trusted-checkpoint", "{tmp}/missing.txt"],
        ["{bundle}", "--trusted-checkpoint", "{tmp}"],
        ["{bundle}", "--trusted-key", "neither-a-key-nor-a-file"],
        ["{bundle}", "--trusted-key"],
    ],
)
def test_bad_usage_exits_2(tmp_path: Path, bundle: Path, args: list[str]) -> None:
    argv = [a.format(bundle=bundle, tmp=tmp_path) for a in args]
    result = verify(tmp_path, *argv)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""


def test_an_oversized_trusted_checkpoint_is_bad_usage(tmp_path: Path, bundle: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * (1024 * 1024))
    result = verify(tmp_path, str(bundle), "--trusted-checkpoint", str(big))
    assert result.exit_code == 2
    assert result.stderr.startswith("callvault: --trusted-checkpoint: ")


def test_a_malformed_trusted_key_file_is_a_failed_line(tmp_path: Path, bundle: Path) -> None:
    key_file = tmp_path / "log.key"
    key_file.write_bytes(b"\xff\xfe garbage")
    (line,) = failed_lines(verify(tmp_path, str(bundle), "--trusted-key", str(key_file)))
    assert line.startswith("FAILED: bad-trusted-key: ")


def test_a_verifier_crash_is_still_one_line(
    tmp_path: Path, bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("unexpected")

    monkeypatch.setattr("callvault.audit.bundle.verify_bundle", boom)
    (line,) = failed_lines(verify(tmp_path, str(bundle)))
    assert line == "FAILED: internal-error: the verifier stopped (RuntimeError)"


def test_the_installed_command_never_opens_the_runtime(tmp_path: Path, bundle: Path) -> None:
    # A real process: nothing of the service stack may load, and no traceback may print.
    set_lines(bundle, lines_of(bundle)[:-1])
    code = (
        "import sys\n"
        "from callvault.cli import main\n"
        f"sys.argv = ['callvault', 'audit', 'verify', {str(bundle)!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'sqlalchemy'"
        " or m.startswith(('callvault.runtime', 'callvault.store', 'callvault.api')))\n"
        "    print('exit', exc.code, loaded)\n"
    )
    env = {**os.environ, **_env(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in out.stderr
    assert out.stdout.splitlines()[-1] == "exit 1 []"
    assert out.stdout.splitlines()[0].startswith("FAILED: size-mismatch: ")
    assert not (tmp_path / "data").exists()
