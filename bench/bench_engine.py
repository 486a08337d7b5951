"""The rollout engine's snapshot of one rollout (services/rollout_steps.build_view): what each engine round
reads before it decides, against reading the same rollout's rows and nothing else, same run, same database.

A rollout of N devices, each with its telemetry before and after the new bundle and a drift score, on SQLite
and on PostgreSQL (TINYFLEET_BENCH_PG, default the local test database; skipped with a note if unreachable).
Each figure is the best of 5 reads inside one transaction, as the engine reads. The ratio is (snapshot) /
(plain read of the rollout's rows): the cost of what the decision needs beyond the rows themselves. It stays
flat with N when the snapshot is one query; one query per device and table made it grow with every device.

.venv/bin/python bench/bench_engine.py [--sizes 1000,10000,100000]
Results: bench/results/engine.json
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert, text  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

from bench.common import best_of, write_result  # noqa: E402
from tinyfleet.server.db import migrate  # noqa: E402
from tinyfleet.server.db.engine import make_engine, normalize_url  # noqa: E402
from tinyfleet.server.db.models import (  # noqa: E402
    Bundle,
    DriftScore,
    Rollout,
    RolloutDevice,
    TelemetryAggregate,
)
from tinyfleet.server.services.rollout_steps import build_view  # noqa: E402

PG_URL = os.environ.get("TINYFLEET_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
HIST = [1] * 16


def seed(url: str, n: int) -> None:
    eng = make_engine(url)
    migrate.upgrade(eng)
    with Session(eng) as s:
        for b in ("old", "new"):
            s.add(Bundle(bundle_id=b, digest=(b * 32)[:64].encode().hex()[:64], hardware_class="esp32s3",
                         security_counter=1, created=0, size=1, payload_offset=1, uploaded_at=0, uploaded_by="b",
                         status="published"))  # fmt: skip
        s.add(Rollout(id=1, bundle_id="new", state="running", created_at=0, updated_at=0, created_by="b",
                      stages=[{"percent": 100}]))  # fmt: skip
        s.commit()
        ids = [f"dev-{i:06d}" for i in range(n)]
        rows = [{"rollout_id": 1, "device_id": d, "stratum": "all", "stage": 0, "status": "assigned",
                 "previous_bundle": "old", "assigned_at": 0.0} for d in ids]  # fmt: skip
        s.execute(insert(RolloutDevice), rows)
        aggs = [{"device_id": d, "bundle_id": b, "windows": 3, "samples": 300, "inferences": 30, "alarms": 1,
                 "confidence_hist": HIST, "channels": []} for d in ids for b in ("old", "new")]  # fmt: skip
        s.execute(insert(TelemetryAggregate), aggs)
        drift = [{"device_id": d, "bundle_id": "new", "computed_at": 0.0, "score": 0.1, "channels": [],
                  "reference": []} for d in ids]  # fmt: skip
        s.execute(insert(DriftScore), drift)
        s.commit()
    eng.dispose()


def measure(url: str, n: int) -> dict[str, float]:
    seed(url, n)
    eng = make_engine(url)
    with Session(eng) as s:
        ro = s.get(Rollout, 1)
        assert ro is not None

        def rows() -> None:
            s.expunge_all()
            got = list(s.exec(select(RolloutDevice).where(RolloutDevice.rollout_id == 1)))
            assert len(got) == n

        def snapshot() -> None:
            s.expunge_all()
            view = build_view(s, s.get(Rollout, 1))  # type: ignore[arg-type]
            assert len(view.devices) == n and view.devices[0].after is not None

        t_rows, t_view = best_of(rows, 5), best_of(snapshot, 5)
    eng.dispose()
    return {"devices": n, "rows_s": round(t_rows, 4), "snapshot_s": round(t_view, 4),
            "ratio": round(t_view / t_rows, 2)}  # fmt: skip


def pg_schema_url() -> tuple[str | None, str]:
    try:
        admin = create_engine(normalize_url(PG_URL), connect_args={"connect_timeout": 3})
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
    except Exception as exc:  # any failure to reach it: skipped, and the result says why
        return None, f"PostgreSQL at {PG_URL} unreachable: {str(exc).splitlines()[0]}"
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}", schema


def drop_schema(schema: str) -> None:
    admin = create_engine(normalize_url(PG_URL))
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,100000")
    sizes = [int(x) for x in ap.parse_args().sizes.split(",")]
    results: dict[str, object] = {"sqlite": [], "postgresql": []}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            r = measure(f"sqlite:///{Path(tmp) / f'engine-{n}.db'}", n)
            results["sqlite"].append(r)  # type: ignore[union-attr]
            print(f"sqlite {n}: snapshot {r['snapshot_s']} s, rows alone {r['rows_s']} s, ratio {r['ratio']}")
    for n in sizes:
        url, schema = pg_schema_url()
        if url is None:
            results["postgresql"] = schema
            print(schema)
            break
        try:
            r = measure(url, n)
        finally:
            drop_schema(schema)
        results["postgresql"].append(r)  # type: ignore[union-attr]
        print(f"postgresql {n}: snapshot {r['snapshot_s']} s, rows alone {r['rows_s']} s, ratio {r['ratio']}")
    path = write_result("engine", {"results": results})
    print(f"-> {path}")


if __name__ == "__main__":
    main()
