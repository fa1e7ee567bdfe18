"""The CLI: one readable line and a non-zero exit for every failure."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from callvault import __version__
from callvault.cli import app
from callvault.crypto.hazmat import generate_self_signed

runner = CliRunner()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"CALLVAULT_DATA_DIR": str(tmp_path / "data"), **extra}


def test_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == __version__


def test_init_prints_the_owner_key_once_and_refuses_a_second_time(tmp_path: Path) -> None:
    first = runner.invoke(app, ["init", "--tenant-name", "acme"], env=_env(tmp_path))
    assert first.exit_code == 0, first.output
    keys = [ln.split()[-1] for ln in first.stdout.splitlines() if ln.startswith("api key")]
    assert len(keys) == 1
    assert keys[0].startswith("cv1.ten_")
    second = runner.invoke(app, ["init"], env=_env(tmp_path))
    assert second.exit_code == 73
    assert second.stderr.strip() == "callvault: callvault is already initialised (a tenant exists)"
    assert keys[0] not in second.output


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"CALLVAULT_PORT": "abc"}, "CALLVAULT_PORT"),
        ({"CALLVAULT_NO_SUCH_SETTING": "1"}, "CALLVAULT_NO_SUCH_SETTING"),
        ({"CALLVAULT_DATABASE_URL": "mysql://x"}, "CALLVAULT_DATABASE_URL"),
    ],
)
def test_bad_setting_is_one_line_and_exit_78(
    tmp_path: Path, env: dict[str, str], needle: str
) -> None:
    result = runner.invoke(app, ["init"], env=_env(tmp_path, **env))
    assert result.exit_code == 78
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert needle in lines[0]
    assert lines[0].startswith("callvault: ")


def test_config_commands_need_an_api_key(tmp_path: Path) -> None:
    result = runner.invoke(app, ["config", "versions", "tenant"], env=_env(tmp_path))
    assert result.exit_code == 78
    assert "CALLVAULT_API_KEY" in result.stderr


def test_unreachable_server_is_one_line(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(generate_self_signed(["localhost"])[0])
    env = _env(
        tmp_path,
        CALLVAULT_API_KEY="cv1.x",
        CALLVAULT_URL="https://127.0.0.1:9",
        CALLVAULT_CA_FILE=str(ca),
    )
    result = runner.invoke(app, ["config", "versions", "tenant"], env=env)
    assert result.exit_code == 69
    assert len(result.stderr.strip().splitlines()) == 1
