"""The dashboard's fleet page over 10,000 devices, filtered, paged and counted in SQL.

Measured against a baseline in the same run on the same server: the API's plain device list of 50
(`GET /api/v1/devices?limit=50`), so the ratio says what the page's filters, counts and rendering cost on
top of a request of the same size. Best of 7, SQLite in a temporary directory. Goal (issue 14): under a
second. Writes bench/results/dashboard.json.
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from bench.common import best_of, write_result  # noqa: E402
from tinyfleet.server.api.app import create_app  # noqa: E402
from tinyfleet.server.db.models import Device  # noqa: E402
from tinyfleet.server.runtime import FleetRuntime  # noqa: E402
from tinyfleet.server.settings import Settings  # noqa: E402
from tinyfleet.server.ui.app import install  # noqa: E402

TOKEN = "bench-dashboard-admin"
DEVICES = 10_000


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        rt = FleetRuntime(Settings(data_dir=Path(tmp) / "data", bootstrap_admin_token=TOKEN, run_model_gate=False))
        app = create_app(rt)
        install(app)
        with TestClient(app) as api:
            now = time.time()
            rows = [{"id": f"d{i:05d}", "hardware_class": "stm32l4" if i % 4 else "esp32s3",
                     "tags": {"site": f"s{i % 10}", "rev": "r1"}, "created_at": now, "broker_password_hash": "x",
                     "online": i % 3 == 0, "last_seen": now, "running_bundle": "app-1.0" if i % 2 else None,
                     "state": "IDLE", "last_report_seq": -1, "desired_seq": 0, "desired_rollback": False,
                     "report_gaps": 0}
                    for i in range(DEVICES)]  # fmt: skip
            with rt.engine.begin() as conn:
                conn.execute(insert(Device), rows)
            browser = TestClient(app)
            pre = re.search(r'name="pre" value="([^"]+)"', browser.get("/ui/signin").text)
            assert pre is not None
            browser.post("/ui/signin", data={"pre": pre.group(1), "token": TOKEN, "next": "/ui/fleet"})
            params = {"tag": "site=s4", "hardware_class": "stm32l4", "page": "2"}
            assert browser.get("/ui/fleet", params=params).status_code == 200
            page = best_of(lambda: browser.get("/ui/fleet", params=params))
            base = best_of(lambda: api.get("/api/v1/devices", params={"limit": 50},
                                           headers={"Authorization": f"Bearer {TOKEN}"}))  # fmt: skip
    result = {
        "devices": DEVICES,
        "fleet_page_ms": round(page * 1000, 1),
        "baseline_api_list_50_ms": round(base * 1000, 1),
        "ratio_to_baseline": round(page / base, 2),
        "goal_ms": 1000,
        "goal_met": page < 1.0,
    }
    path = write_result("dashboard", result)
    print(f"fleet page over {DEVICES:,} devices: {page * 1000:.1f} ms, {page / base:.2f}x the API's list of 50 "
          f"({base * 1000:.1f} ms); goal < 1000 ms {'met' if page < 1 else 'NOT met'} -> {path}")  # fmt: skip


if __name__ == "__main__":
    main()
