"""The dashboard in a real browser (headless Chromium) against a real `fleet-server` with fleet-sim devices.

Sign in; watch a staged rollout advance without reloading; a bad firmware's halt reason and failed devices;
pause and resume from the page (checked through the API and in the audit page); a viewer sees no buttons and
a forged POST is refused; a device's drift chart draws the points the API returns; the bundle page renders
the gate report. Screenshots of each page at 1280x800 and 390x844 go to build/ui-screenshots/.

The tests share one world and run in file order.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tinyfleet.simulator.chaos.scenarios import BAD_FIRMWARE, GOOD
from tinyfleet.simulator.releases import Release
from tinyfleet.simulator.server_proc import ADMIN_TOKEN

from .browser import ROOT, WorldThread, screenshot, start_chromium, stop_chromium, wait_for

HW = "stm32l4"
BAD = Release("vibration-1.2.0-badfw", counter=3, firmware_version="2.4.0-bad", descriptor=BAD_FIRMWARE.descriptor)
SLOW = Release("vibration-1.3.0", counter=3, firmware_version="2.5.0")


@dataclass
class Dash:
    w: WorldThread
    driver: Any
    api: httpx.Client

    def get(self, path: str) -> None:
        self.driver.get(self.w.url + path)

    def by_id(self, id_: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.ID, id_)

    def all(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def rollout(self, rid: int) -> dict[str, Any]:
        return self.api.get(f"/api/v1/rollouts/{rid}").json()  # type: ignore[no-any-return]

    def create(self, release: Release, stages: list[dict[str, Any]]) -> int:
        self.w.run(self.w.world.release(release, HW))
        return self.w.run(self.w.world.rollout(release, HW, stages, stratify_by=["temperature"]))

    def sign_in(self, token: str) -> None:
        self.driver.delete_all_cookies()
        self.get("/ui/rollouts")
        wait_for(lambda: "/ui/signin" in self.driver.current_url, 10, "the redirect to the sign-in page")
        self.by_id("token").send_keys(token)
        self.by_id("token").submit()
        wait_for(lambda: self.driver.current_url.endswith("/ui/rollouts"), 10, "the rollouts page after sign-in")


@pytest.fixture(scope="module")
def dash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dash]:
    driver, why = start_chromium()
    if driver is None:
        pytest.skip(why)
    w = WorldThread(tmp_path_factory.mktemp("dash"), devices=10)
    try:
        w.run(w.world.start())
        assert w.run(w.world.settle(timeout_s=120)), "the fleet did not come online"
        with httpx.Client(base_url=w.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30) as api:
            yield Dash(w, driver, api)
    finally:
        stop_chromium(driver)
        w.stop()


def test_sign_in_keeps_the_token_out_of_scripts_and_urls(dash: Dash) -> None:
    dash.driver.delete_all_cookies()
    dash.get("/ui/fleet")
    wait_for(lambda: "/ui/signin" in dash.driver.current_url, 10, "the redirect to sign in")
    screenshot(dash.driver, "signin")
    dash.by_id("token").send_keys(ADMIN_TOKEN)
    dash.by_id("token").submit()
    wait_for(lambda: dash.driver.current_url == dash.w.url + "/ui/fleet", 10, "the fleet page")
    assert ADMIN_TOKEN not in dash.driver.current_url
    assert "tf_session" not in dash.driver.execute_script("return document.cookie")  # HttpOnly
    (cookie,) = [c for c in dash.driver.get_cookies() if c["name"] == "tf_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert dash.by_id("total").text == "10"
    screenshot(dash.driver, "fleet")


def test_staged_rollout_advances_on_the_page_without_reloading(dash: Dash) -> None:
    soak = {"soak_s": 2}
    rid = dash.create(GOOD, [{"percent": 10, "install": soak}, {"percent": 50, "install": soak}, {"percent": 100}])
    dash.get(f"/ui/rollouts/{rid}")
    dash.driver.execute_script("window.tfSamePage = true")  # gone if the page reloads
    seen: list[tuple[str, str, str]] = []

    def progressed() -> bool:
        live = dash.by_id("live")
        ok = dash.driver.find_element("css selector", '[data-count="succeeded"]').text
        seen.append((live.get_attribute("data-state"), live.get_attribute("data-stage"), ok))
        if len({s[1] for s in seen}) == 2 and len(seen) > 1 and seen[-1][0] == "running":
            screenshot(dash.driver, "rollout-live", full=True)
        return seen[-1][0] == "completed"

    wait_for(progressed, 120, f"rollout {rid} to complete on the page", interval_s=0.2)
    assert dash.driver.execute_script("return window.tfSamePage") is True, "the page reloaded"
    assert [s for s in dict.fromkeys(x[1] for x in seen)] == ["0", "1", "2"], seen  # every stage, in order
    assert int(seen[0][2]) < 10 and seen[-1][2] == "10", seen
    assert dash.rollout(rid)["rollout"]["state"] == "completed"
    assert dash.all("#stage-3 .barnum")[0].get_attribute("data-done") == "10"
    screenshot(dash.driver, "rollout-completed")
    dash.get("/ui/rollouts")
    screenshot(dash.driver, "rollouts")


def test_bad_firmware_rollout_shows_its_halt_reason_and_failed_devices(dash: Dash) -> None:
    rid = dash.create(BAD, [{"percent": 10}, {"percent": 100}])
    dash.get(f"/ui/rollouts/{rid}")
    wait_for(lambda: dash.by_id("live").get_attribute("data-state") == "halted", 120, "the halt on the page")
    reason = dash.by_id("halt-reason").text
    assert "install gate (stage 1)" in reason and reason.endswith(dash.rollout(rid)["rollout"]["reason"])
    rows = dash.all("#failed tbody tr")
    failed = {r.find_element("css selector", "th").text: r.find_element("css selector", "code.reason").text
              for r in rows}  # fmt: skip
    api_failed = {d["device_id"] for d in dash.api.get(f"/api/v1/rollouts/{rid}/devices").json()
                  if d["status"] in ("failed", "rolled_back")}  # fmt: skip
    first = re.search(r"first: (\S+)", reason).group(1)  # type: ignore[union-attr]
    assert first in failed and set(failed) <= api_failed, (failed, api_failed)
    assert set(failed.values()) == {"HealthLatency"}, failed  # the firmware blows the latency budget
    assert not dash.all("#actions")  # nothing to pause or resume on a halted rollout
    screenshot(dash.driver, "rollout-halted", full=True)


def test_pause_and_resume_from_the_page_change_the_rollout_and_are_audited(dash: Dash) -> None:
    from selenium.webdriver.common.keys import Keys

    rid = dash.create(SLOW, [{"percent": 10, "install": {"soak_s": 3600}}, {"percent": 100}])
    dash.get(f"/ui/rollouts/{rid}")
    wait_for(lambda: dash.all("#pause"), 30, "the pause button")
    focused = lambda: dash.driver.execute_script("return document.activeElement.id")  # noqa: E731
    for _ in range(30):  # by keyboard: Tab until the pause button has the focus
        if focused() == "pause":
            break
        dash.driver.switch_to.active_element.send_keys(Keys.TAB)
    assert focused() == "pause"
    swaps = dash.driver.execute_script("return document.querySelectorAll('#live').length && "
                                       "(window.tfSwaps = 0, document.body.addEventListener('htmx:afterSwap', "
                                       "() => window.tfSwaps++), true)")  # fmt: skip
    assert swaps and wait_for(lambda: dash.driver.execute_script("return window.tfSwaps") >= 2, 10, "two swaps")
    assert focused() == "pause"  # the live part was replaced twice; the focus stayed on the button
    dash.driver.switch_to.active_element.send_keys(Keys.ENTER)
    for action, state in (("pause", "paused"), ("resume", "running")):
        if action != "pause":
            wait_for(lambda a=action: dash.all(f"#{a}"), 30, f"the {action} button").pop().click()
        wait_for(lambda: dash.all("#confirm"), 10, "the confirmation page")
        if action == "pause":
            screenshot(dash.driver, "confirm")
        dash.by_id("confirm").click()
        wait_for(lambda s=state: dash.by_id("rollout-state").text == s, 10, f"the page to say {state}")
        assert dash.rollout(rid)["rollout"]["state"] == state
    dash.get("/ui/audit?action=rollout.pause")
    rows = [r.text for r in dash.all("#audit tbody tr")]
    assert len(rows) == 1 and "bootstrap-admin rollout.pause" in rows[0] and str(rid) in rows[0], rows
    dash.get("/ui/audit")
    actions = [r.find_elements("css selector", "td")[2].text for r in dash.all("#audit tbody tr")]
    assert actions[:2] == ["rollout.resume", "rollout.pause"], actions
    screenshot(dash.driver, "audit")
    dash.get(f"/ui/rollouts/{rid}")
    wait_for(lambda: dash.all("#pause"), 10, "the pause button again")  # still running, for the viewer's test


def test_a_viewer_sees_no_actions_and_a_forged_post_is_refused(dash: Dash) -> None:
    secret = dash.api.post("/api/v1/tokens", json={"name": "vic", "role": "viewer"}).json()["secret"]
    (rid,) = [r["rollout"]["id"] for r in dash.api.get("/api/v1/rollouts", params={"state": "running"}).json()]
    dash.sign_in(secret)
    dash.get(f"/ui/rollouts/{rid}")
    assert dash.by_id("rollout-state").text == "running"
    assert not dash.all("#actions") and not dash.all("#pause") and not dash.all("#abort")
    assert not dash.all('a[href="/ui/audit"]')
    csrf = dash.all('input[name="csrf"]')[0].get_attribute("value")
    cookies = {c["name"]: c["value"] for c in dash.driver.get_cookies()}
    r = httpx.post(f"{dash.w.url}/ui/rollouts/{rid}/pause", data={"csrf": csrf}, cookies=cookies)
    assert r.status_code == 403 and "needs &#39;operator&#39;" in r.text
    assert dash.rollout(rid)["rollout"]["state"] == "running"
    screenshot(dash.driver, "rollout-viewer")
    dash.sign_in(ADMIN_TOKEN)
    dash.get(f"/ui/rollouts/{rid}/abort")
    dash.by_id("confirm").click()  # end it, so its devices are free again
    wait_for(lambda: dash.by_id("rollout-state").text == "aborted", 10, "the abort")


def test_device_page_draws_the_drift_points_the_api_returns(dash: Dash) -> None:
    dev = dash.api.get("/api/v1/devices").json()[0]["id"]

    def windows() -> list[dict[str, Any]]:
        return dash.api.get(f"/api/v1/devices/{dev}/telemetry").json()  # type: ignore[no-any-return]

    wait_for(lambda: len(windows()) >= 4, 60, f"telemetry from {dev}")
    dash.get(f"/ui/devices/{dev}")
    api = {f"{w['epoch']}:{w['seq']}": w for w in windows()}
    for ch in (0, 1, 2):
        pts = dash.all(f"#drift-ch{ch} circle.pt")
        assert len(pts) >= 2, f"channel {ch}: {len(pts)} points"
        for p in pts:
            w = api[p.get_attribute("data-window")]
            assert float(p.get_attribute("data-mean")) == pytest.approx(w["channels"][ch]["mean"], abs=1e-9)
        assert dash.all(f"#drift-ch{ch} line.ref") and len(dash.all(f"#drift-ch{ch} line.threshold")) == 2
    assert dash.all("#confidence rect.hbar") and dash.all("#reports tbody tr")
    screenshot(dash.driver, "device", full=True)
    dash.by_id("calibrate").submit()  # build the calibration-only bundle the page proposes
    wait_for(lambda: "/ui/bundles/" in dash.driver.current_url, 60, "the new bundle's page")
    assert "calibration-only bundle" in dash.driver.page_source
    dash.get("/ui/drift?by=temperature&sort=shift&order=desc")
    rows = [[td.text for td in r.find_elements("css selector", "td")] for r in dash.all("#flagged tbody tr")]
    flagged = {d["device_id"] for d in dash.api.get("/api/v1/drift").json() if d["alert"] or d["shift_alert"]}
    assert len(rows) == len(flagged) and all(r[0].startswith("temperature=") for r in rows)
    shifts = [float(r[3]) for r in rows]
    assert shifts == sorted(shifts, reverse=True)
    screenshot(dash.driver, "drift")


def test_bundle_page_renders_the_gate_report(dash: Dash) -> None:
    sample = ROOT / "models" / "sample"
    b64 = lambda p: base64.b64encode(p.read_bytes()).decode()  # noqa: E731
    body = {
        "bundle_id": "vibration-2.0.0-stm32l4", "hardware_class": HW, "security_counter": 4,
        "firmware": {"version": "3.0.0", "data_base64": base64.b64encode(b"\x01" * 6000).decode()},
        "model": {"version": "1.0.0", "data_base64": b64(sample / "vibration_int8.tflite")},
        "thresholds": json.loads((sample / "thresholds.json").read_text()),
        "calibration": json.loads((sample / "calibration.json").read_text()),
        "validation_set_base64": b64(sample / "val.npz"),
        "feature_extractor_version": "vib-window-v1",
        "deployment": {"max_latency_ms": 50, "peak_ram_bytes": 65536},
    }  # fmt: skip
    r = dash.api.post("/api/v1/bundles/build", json=body, timeout=120)
    assert r.status_code == 201, r.text
    dash.get("/ui/bundles/vibration-2.0.0-stm32l4")
    assert dash.by_id("gate-verdict").text == "passed"
    checks = {r.find_element("css selector", "th").text: r.find_elements("css selector", "td")[0].text
              for r in dash.all("#gate tbody tr")}  # fmt: skip
    assert {checks[c] for c in ("accuracy", "saturation", "agreement", "memory")} == {"pass"}, checks
    assert len(dash.all("#saturation rect.hbar")) >= 2 and len(dash.all("#components tbody tr")) == 5
    screenshot(dash.driver, "bundle", full=True)
    dash.get("/ui/bundles")
    screenshot(dash.driver, "bundles")
