"""`callvault audit export|log-key|checkpoint|sinks` on a real data directory, then verify."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from callvault.audit.note import Verifier
from callvault.audit.verify import verify_checkpoint
from callvault.cli import app

runner = CliRunner()


@pytest.fixture
def installed(tmp_path: Path) -> tuple[dict[str, str], str]:
    env = {"CALLVAULT_DATA_DIR": str(tmp_path / "data")}
    result = runner.invoke(app, ["init", "--tenant-name", "acme"], env=env)
    assert result.exit_code == 0, result.output
    tenant = next(
        w for ln in result.stdout.splitlines() for w in ln.split() if w.startswith("ten_")
    )
    return env, tenant


def test_export_then_verify_against_the_pinned_key(
    tmp_path: Path, installed: tuple[dict[str, str], str]
) -> None:
    env, tenant = installed
    key = runner.invoke(app, ["audit", "log-key", "--tenant", tenant], env=env)
    assert key.exit_code == 0, key.output
    pinned = key.stdout.strip()
    assert pinned.startswith(f"callvault.localhost/audit/{tenant}+")
    out = tmp_path / "bundle"
    exported = runner.invoke(
        app, ["audit", "export", "--tenant", tenant, "--out", str(out)], env=env
    )
    assert exported.exit_code == 0, exported.output
    assert (out / "log-key.txt").read_text().strip() == pinned
    lines = (out / "entries.ndjson").read_bytes().splitlines()
    actions = [json.loads(line)["entry"]["action"] for line in lines]
    assert actions[-1] == "audit.export"  # the export is in the log it exports
    ok = runner.invoke(app, ["audit", "verify", str(out), "--trusted-key", pinned])
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.startswith("OK:")
    # One byte changed in one entry: the offline verifier says so and exits 1.
    data = (out / "entries.ndjson").read_bytes()
    (out / "entries.ndjson").write_bytes(data.replace(b'"audit.export"', b'"audit.exporT"'))
    bad = runner.invoke(app, ["audit", "verify", str(out), "--trusted-key", pinned])
    assert bad.exit_code == 1
    assert "FAILED" in bad.stdout
    assert "Traceback" not in bad.output


def test_checkpoint_command_prints_a_note_the_log_key_verifies(
    installed: tuple[dict[str, str], str],
) -> None:
    env, tenant = installed
    pinned = runner.invoke(app, ["audit", "log-key", "--tenant", tenant], env=env).stdout.strip()
    result = runner.invoke(app, ["audit", "checkpoint", "--tenant", tenant], env=env)
    assert result.exit_code == 0, result.output
    cp = verify_checkpoint(result.stdout.encode(), Verifier.from_key_string(pinned))
    assert cp.size >= 1


def test_export_refuses_a_directory_that_is_not_empty(
    tmp_path: Path, installed: tuple[dict[str, str], str]
) -> None:
    env, tenant = installed
    out = tmp_path / "full"
    out.mkdir()
    (out / "something").write_text("x")
    result = runner.invoke(app, ["audit", "export", "--tenant", tenant, "--out", str(out)], env=env)
    assert result.exit_code != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert (out / "something").read_text() == "x"


def test_sinks_command_lists_none(installed: tuple[dict[str, str], str]) -> None:
    env, tenant = installed
    result = runner.invoke(app, ["audit", "sinks", "--tenant", tenant], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "no sinks"
