"""`fleet-server` commands: one-line errors and exit codes, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from tinyfleet.server.db.engine import make_engine


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from tinyfleet.server.main import main; main()", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_migrate_create_token_and_unknown_revision(tmp_path: Path) -> None:
    env = {"TINYFLEET_DATA_DIR": str(tmp_path)}
    r = run(["migrate"], env)
    assert r.returncode == 0 and r.stdout.startswith("database at schema revision")
    r = run(["create-token", "--name", "alice", "--role", "admin"], env)
    assert r.returncode == 0 and r.stdout.startswith("tft_")
    r = run(["create-token", "--name", "alice", "--role", "admin"], env)
    assert r.returncode == 2 and r.stderr.strip() == "fleet-server: a token named 'alice' already exists"
    eng = make_engine(f"sqlite:///{tmp_path / 'fleet.db'}")
    with eng.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_newer'"))
    r = run(["serve"], env)
    assert r.returncode == 3 and "Traceback" not in r.stderr
    assert "schema revision '9999_newer', which this server does not know" in r.stderr


def test_bad_settings_are_named(tmp_path: Path) -> None:
    r = run(["config"], {"TINYFLEET_API_PORT": "eighty"})
    assert r.returncode == 2 and "invalid setting api_port" in r.stderr and "Traceback" not in r.stderr
    r = run(["config"], {"TINYFLEET_CONFIG": str(tmp_path / "missing.toml")})
    assert r.returncode == 2 and "missing.toml: no such file" in r.stderr
    r = run(["config"], {"TINYFLEET_BROKER_PASSWORD": "s3cret", "TINYFLEET_DATA_DIR": str(tmp_path)})
    assert r.returncode == 0 and "s3cret" not in r.stdout and '"broker_password": "***"' in r.stdout


def test_fleetctl_server_commands_fail_with_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tinyfleet.fleetctl.main import app

    runner = CliRunner()
    r = runner.invoke(app, ["devices", "list"], env={"TINYFLEET_TOKEN": ""})
    assert r.exit_code == 2 and "no operator token" in r.output
    from tinyfleet.server.workers.broker_process import free_port

    url = f"http://127.0.0.1:{free_port()}"
    r = runner.invoke(app, ["rollout", "list", "--server", url, "--token", "t"])
    assert r.exit_code == 2 and f"cannot reach the fleet server at {url}" in r.output
    (tmp_path / "stages.json").write_text("{not json")
    r = runner.invoke(app, ["rollout", "create", "--bundle", "b", "--stages-file", str(tmp_path / "stages.json"),
                            "--server", url, "--token", "t"])  # fmt: skip
    assert r.exit_code == 2 and "is not valid JSON" in r.output
    r = runner.invoke(app, ["devices", "provision", "d", "--hw", "x", "--tag", "novalue", "--token", "t"])
    assert r.exit_code == 2 and "--tag 'novalue' must look like name=value" in r.output


def test_a_list_setting_given_as_a_plain_path_is_one_line() -> None:
    r = run(["config"], {"TINYFLEET_TRUSTED_KEY_FILES": "keys/signing.pub.pem"})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == (
        "fleet-server: invalid setting TINYFLEET_TRUSTED_KEY_FILES: cannot parse its value; lists are JSON, "
        """e.g. TINYFLEET_TRUSTED_KEY_FILES='["a.pem", "b.pem"]'"""
    )


def test_serve_without_trusted_keys_warns(tmp_path: Path) -> None:
    import os
    import signal

    from tinyfleet.server.workers.broker_process import free_port

    env = {**os.environ, "TINYFLEET_DATA_DIR": str(tmp_path), "TINYFLEET_API_PORT": str(free_port())}
    env.pop("TINYFLEET_TRUSTED_KEY_FILES", None)
    proc = subprocess.Popen([sys.executable, "-c", "from tinyfleet.server.main import main; main()", "serve"],
                            env=env, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert first.strip() == ("fleet-server: warning: no trusted_key_files (TINYFLEET_TRUSTED_KEY_FILES): every "
                                 "bundle upload will be refused")  # fmt: skip
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
