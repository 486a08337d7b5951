"""Every API area has a fleetctl command, against a real server: bundles, drift and calibration, audit, tokens,
device reports, credentials, cohorts; `--json` everywhere; paging past the API's 1,000; tags after provisioning;
bulk operations by filter with a confirmation; help text on every subcommand; whole ids in narrow tables."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

import typer.main

from tinyfleet.bundles import TrustedKeys
from tinyfleet.fleetctl.main import app

from ..server.srv_bundles import make_bundle
from ..server.srv_device import ScriptedDevice
from ..server.srv_fleet import wait_until
from .conftest import LiveServer


def _commands() -> dict[str, Any]:
    out: dict[str, Any] = {}

    def walk(cmd: Any, prefix: str) -> None:
        if hasattr(cmd, "commands"):  # a group (typer's own click)
            for name, sub in cmd.commands.items():
                walk(sub, f"{prefix} {name}".strip())
        else:
            out[prefix] = cmd

    walk(typer.main.get_command(app), "")
    return out


def test_every_command_has_help_and_json() -> None:
    cmds = _commands()
    assert {"bundle list", "bundle show", "bundle retire", "drift list", "drift proposal", "drift cohorts",
            "drift calibration-bundle", "audit", "tokens create", "tokens list", "tokens revoke", "devices reports",
            "devices credentials", "devices tag", "devices delete"} <= set(cmds)  # fmt: skip
    assert [name for name, c in cmds.items() if not (c.help or "").strip()] == []
    missing = [name for name, c in cmds.items() if not any("--json" in getattr(p, "opts", ()) for p in c.params)]
    assert missing == []


def _insert_devices(srv: LiveServer, n: int, tags: str = '{"fleet": "bulk"}') -> None:
    """Rows straight into the server's database: enough devices to page, without provisioning each one."""
    db = sqlite3.connect(srv.proc.data_dir / "fleet.db", timeout=30)
    with db:
        db.executemany(
            "INSERT INTO device (id, hardware_class, tags, created_at, broker_password_hash, online, last_report_seq,"
            " desired_seq, desired_rollback, report_gaps) VALUES (?, 'stm32l4', ?, ?, 'h', 0, -1, 0, 0, 0)",
            [(f"bulk-{i:05d}", tags, time.time()) for i in range(n)],
        )
    db.close()


def test_devices_list_pages_filters_and_bulk_operations(live_server: LiveServer, fleetctl_env) -> None:
    env = live_server.env
    _insert_devices(live_server, 1003)
    r = fleetctl_env(env, "devices", "list", "--json")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)) == 1003  # past the API's page of 1,000
    assert json.loads(fleetctl_env(env, "devices", "list", "--online", "--json").stdout) == []
    assert len(json.loads(fleetctl_env(env, "devices", "list", "--offline", "--json").stdout)) == 1003

    # tags editable after provisioning, one device
    r = fleetctl_env(env, "devices", "tag", "bulk-00000", "--set", "site=b", "--remove", "fleet")
    assert r.returncode == 0 and r.stdout.strip() == "retagged bulk-00000", r.stderr
    assert json.loads(fleetctl_env(env, "devices", "show", "bulk-00000", "--json").stdout)["tags"] == {"site": "b"}
    r = fleetctl_env(env, "devices", "tag", "bulk-00000", "--set", "Bad=x")
    assert r.returncode == 1 and "tag name 'Bad'" in r.stdout

    # many by filter: asked first (no answer on stdin: nothing done), then with --yes
    r = fleetctl_env(env, "devices", "delete", "--tag", "fleet=bulk")
    assert r.returncode == 1 and "delete 1002 device(s): bulk-00001, " in r.stderr
    assert "not confirmed; nothing done" in r.stderr
    r = fleetctl_env(env, "devices", "tag", "--tag", "fleet=bulk", "--set", "wave=1", "--yes", "--json")
    assert r.returncode == 0 and len(json.loads(r.stdout)) == 1002
    assert fleetctl_env(env, "devices", "tag", "bulk-00001", "bulk-00002", "--set", "wave=2").returncode == 0
    r = fleetctl_env(env, "devices", "delete", "--tag", "wave=2", "--yes")
    assert r.returncode == 0 and r.stdout.strip().endswith("2 of 2 device(s) deleted"), r.stderr
    assert len(json.loads(fleetctl_env(env, "devices", "list", "--tag", "wave=1", "--json").stdout)) == 1000
    r = fleetctl_env(env, "devices", "delete")
    assert r.returncode == 2 and "name devices or give a filter" in r.stderr


def test_bundles_audit_tokens_reports_credentials_drift_and_cohorts(live_server: LiveServer, fleetctl_env,
                                                                    tmp_path) -> None:  # fmt: skip
    env = live_server.env
    v1 = make_bundle(live_server.key, "cal-1", counter=4)
    r = live_server.api("POST", "/bundles", content=v1, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201
    live_server.upload("old-1", counter=1)
    listed = fleetctl_env(env, "bundle", "list")
    assert listed.returncode == 0 and "cal-1" in listed.stdout and "old-1" in listed.stdout
    shown = fleetctl_env(env, "bundle", "show", "cal-1")
    assert r.json()["digest"] in shown.stdout and "calibration" in shown.stdout
    retired = fleetctl_env(env, "bundle", "retire", "old-1")
    assert retired.returncode == 0 and retired.stdout.startswith("retired old-1"), retired.stderr
    assert {b["bundle_id"]: b["status"] for b in json.loads(fleetctl_env(env, "bundle", "list", "--json").stdout)}[
        "old-1"] == "retired"  # fmt: skip

    # a device with telemetry: reports, credentials, drift, proposal, calibration bundle, cohorts
    prov = json.loads(fleetctl_env(env, "devices", "provision", "s1", "--hw", "stm32l4", "--tag", "site=a").stdout)
    keys = TrustedKeys.from_pem_files([live_server.pub])
    dev = None
    for _ in range(50):  # the broker reloads its password file a moment after provisioning
        dev = ScriptedDevice(prov["broker"]["port"], "s1", prov["broker"]["password"], "stm32l4", keys, v1)
        if wait_until(lambda d=dev: d.client.is_connected(), 1):
            break
        dev.close()
    assert dev is not None
    try:
        dev.telemetry(100, 3, (0,) * 15 + (100,), [(140 * 256, 400 * 256), (0, 100 * 256)])
        assert wait_until(lambda: json.loads(fleetctl_env(env, "drift", "list", "--json").stdout) != [], 30)
        dev.telemetry(100, 3, (0,) * 15 + (100,), [(170 * 256, 400 * 256), (0, 100 * 256)])
        assert wait_until(lambda: json.loads(fleetctl_env(env, "drift", "list", "--shift-alerts", "--json").stdout)
                          != [], 30)  # fmt: skip
        text = fleetctl_env(env, "drift", "list").stdout
        assert "s1" in text and "cal-1" in text
        cal = tmp_path / "cal.json"
        r = fleetctl_env(env, "drift", "proposal", "s1", "--out", cal)
        assert r.returncode == 0 and "build with --counter 5 --calibration " + str(cal) in r.stdout, r.stderr
        api_proposal = live_server.api("GET", "/drift/s1/calibration-proposal").json()
        assert json.loads(cal.read_text()) == api_proposal["calibration"]  # ready for bundle build --calibration
        r = fleetctl_env(env, "drift", "calibration-bundle", "s1", "--id", "cal-1-s1")
        assert r.returncode == 0 and r.stdout.startswith("stored cal-1-s1 (counter 5, scope s1"), r.stderr
        cohorts = json.loads(fleetctl_env(env, "drift", "cohorts", "--by", "site", "--json").stdout)
        assert cohorts[0]["cohort"] == {"site": "a"}
        # which keys the devices trust: s1 runs cal-1, signed by the server's one key
        (k,) = json.loads(fleetctl_env(env, "keys", "fleet", "--json").stdout)
        assert (k["server_trusts"], k["devices_trusting"]) == (True, 1) and "cal-1" in k["bundles_signed"]
        extra = tmp_path / "extra.tfb"
        extra.write_bytes(make_bundle(live_server.key, "grants-1", counter=4))
        up = fleetctl_env(env, "rollout", "upload", extra, "--grants-key", live_server.pub, "--json")
        assert up.returncode == 0 and json.loads(up.stdout)["grants_keys"] == [k["key_id"]], up.stderr
        reports = json.loads(fleetctl_env(env, "devices", "reports", "s1", "--json").stdout)
        assert isinstance(reports, list)
        new = json.loads(fleetctl_env(env, "devices", "credentials", "s1").stdout)
        assert new["broker"]["password"] != prov["broker"]["password"]
    finally:
        dev.close()

    audit = json.loads(fleetctl_env(env, "audit", "--action", "device.rotate_credentials", "--json").stdout)
    assert [e["target"] for e in audit] == ["s1"]
    assert "device.tags" not in fleetctl_env(env, "audit").stdout  # nothing retagged here
    secret = fleetctl_env(env, "tokens", "create", "vic", "--role", "viewer").stdout.strip()
    assert secret.startswith("tft_")
    assert "vic" in [t["name"] for t in json.loads(fleetctl_env(env, "tokens", "list", "--json").stdout)]
    r = fleetctl_env(env, "tokens", "revoke", "vic")
    assert r.returncode == 0 and r.stdout.strip() == "revoked vic"
    r = fleetctl_env({**env, "TINYFLEET_TOKEN": secret}, "devices", "list")
    assert r.returncode == 2 and "server said 401" in r.stderr


def test_tables_keep_whole_ids_at_80_columns(live_server: LiveServer, fleetctl_env) -> None:
    long_id = "plant-a-line-07-press-12-vibration-sensor-0001"
    _insert_devices(live_server, 0)
    r = live_server.api("POST", "/devices", json={"id": long_id, "hardware_class": "stm32l4",
                                                 "tags": {"site": "plant-a", "line": "l07"}})  # fmt: skip
    assert r.status_code == 201
    r = fleetctl_env({**live_server.env, "COLUMNS": "80"}, "devices", "list")
    assert long_id in r.stdout, r.stdout


def test_devices_provision_batch_all_or_none(live_server: LiveServer, fleetctl_env, tmp_path) -> None:
    from ..server.srv_raw_connect import ACCEPTED, connack_code

    env = live_server.env
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("# line 3\nfab-002\n\nfab-003\n")
    r = fleetctl_env(env, "devices", "provision-batch", "fab-000", "fab-001", "--from", str(ids_file), "--hw",
                     "stm32l4", "--tag", "site=fab")  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [d["device"]["id"] for d in out] == ["fab-000", "fab-001", "fab-002", "fab-003"]
    assert all(d["device"]["tags"] == {"site": "fab"} for d in out)
    for d in out:  # the printed credentials work at once
        b = d["broker"]
        assert connack_code(b["port"], b["username"].encode(), b["password"].encode()) == ACCEPTED
    # one id already registered: the whole batch is refused, the new id is not registered
    r = fleetctl_env(env, "devices", "provision-batch", "fab-004", "fab-001", "--hw", "stm32l4")
    assert r.returncode == 1 and "device 'fab-001' is already registered" in r.stdout + r.stderr, r.stdout + r.stderr
    r = fleetctl_env(env, "devices", "show", "fab-004")
    assert r.returncode == 2 and "no device 'fab-004'" in r.stdout + r.stderr
    r = fleetctl_env(env, "devices", "provision-batch", "--hw", "stm32l4")
    assert r.returncode == 2 and "no device ids" in r.stdout + r.stderr
