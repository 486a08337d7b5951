"""README's folder table is the tree: every folder it names exists, and every top-level folder and every
package under src/tinyfleet/ is in it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _table() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("| folder | what |")[1].split("\n\n")[0]
    return {m.rstrip("/") for m in re.findall(r"^\| `([^`]+)` \|", section, re.M)}


def test_readme_folder_table_matches_the_tree() -> None:
    listed = _table()
    assert all((ROOT / p).is_dir() for p in listed), sorted(p for p in listed if not (ROOT / p).is_dir())
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    top = {line.split("/")[0] for line in tracked.splitlines() if "/" in line and not line.startswith(".")}
    src = ROOT / "src" / "tinyfleet"
    packages = {f"src/tinyfleet/{p.name}" for p in src.iterdir() if (p / "__init__.py").exists()}
    assert (top - {"src"}) | packages == listed
