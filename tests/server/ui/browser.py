"""Headless Chromium (Debian's chromium through chromium-driver) and a fleet-sim world for the browser tests.

The world (a `fleet-server serve` process with its Mosquitto, and simulated devices running the real agent
core) runs on an event loop of its own in a thread, so the tests drive the browser synchronously while the
fleet keeps moving.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from tinyfleet.bundles.signing import private_pem
from tinyfleet.simulator.fleet import FleetSpec
from tinyfleet.simulator.world import World

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[3]
SHOTS = Path(os.environ.get("TINYFLEET_UI_SHOTS", ROOT / "build" / "ui-screenshots"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
DRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
# Without the background-networking flags Chromium's own connections are refused here and it stalls.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,800", "--hide-scrollbars")  # fmt: skip
DESKTOP, PHONE = (1280, 800), (390, 844)


def start_chromium() -> tuple[Any, str | None]:
    """(driver, None), or (None, why not) when Chromium cannot be started here."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        return None, f"selenium is not installed: {exc}"
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        return None, f"{CHROMIUM} or {DRIVER} missing (Debian packages chromium and chromium-driver)"
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="tf-chromium-")
    for a in (*FLAGS, f"--user-data-dir={profile}"):
        opts.add_argument(a)
    try:
        driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    except Exception as exc:  # any failure to start means: skip, and say why
        shutil.rmtree(profile, ignore_errors=True)
        return None, f"chromium did not start: {str(exc).splitlines()[0]}"
    driver.set_page_load_timeout(30)
    driver._tf_profile = profile  # removed by stop_chromium
    return driver, None


def stop_chromium(driver: Any) -> None:
    driver.quit()
    shutil.rmtree(getattr(driver, "_tf_profile", ""), ignore_errors=True)


def screenshot(driver: Any, name: str, full: bool = False) -> list[Path]:
    """The page at desktop (1280x800) and phone (390x844) size, as build/ui-screenshots/<name>-<size>.png;
    `full`: also the whole page at desktop width (<name>-full.png)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    out = []
    sizes = [("desktop", DESKTOP), ("phone", PHONE)]
    if full:
        height = min(int(driver.execute_script("return document.documentElement.scrollHeight")), 4000)
        sizes.append(("full", (DESKTOP[0], max(height, DESKTOP[1]))))
    for label, (w, h) in sizes:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": w, "height": h, "deviceScaleFactor": 1,
                                "mobile": label == "phone"})  # fmt: skip
        driver.execute_script("window.scrollTo(0, 0)")
        path = SHOTS / f"{name}-{label}.png"
        driver.save_screenshot(str(path))
        out.append(path)
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return out


def wait_for(pred: Callable[[], T], timeout_s: float, what: str, interval_s: float = 0.1) -> T:
    """Poll until `pred()` is truthy (its value is returned) or fail after `timeout_s`, naming `what`."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            got = pred()
        except Exception:  # a page mid-swap: try again
            got = None
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


class WorldThread:
    """A fleet-sim World on its own event loop thread; `run(coro)` runs a coroutine there and waits for it."""

    def __init__(self, workdir: Path, devices: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fleet-sim", daemon=True)
        self.thread.start()
        self.world = World(workdir, FleetSpec(devices, seed=11, mix={"stm32l4": 1.0}, prefix="dash"))
        # The server signs calibration-only bundles with the key the world's releases are signed with.
        key_file = workdir / "signing.key.pem"
        key_file.write_bytes(private_pem(self.world.key))
        self.world.server.env["TINYFLEET_SIGNING_KEY_FILE"] = str(key_file)

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 180.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    @property
    def url(self) -> str:
        return self.world.server.url

    def stop(self) -> None:
        try:
            self.run(self.world.stop(), 60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
