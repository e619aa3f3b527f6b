"""The code location's names (assets, checks, jobs, schedules, sensors, resources) match the committed snapshot
tests/snapshots/definitions.json: a renamed or dropped asset, check, job, schedule or sensor breaks users' saved
selections, backfills and run history, so every change to the list is deliberate.

After an intended change, regenerate the snapshot and commit it with the change:
    UPDATE_DEFINITIONS_SNAPSHOT=1 .venv/bin/python -m pytest tests/test_definitions_snapshot.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pipeline.definitions import defs as load_defs

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"
UPDATE_ENV = "UPDATE_DEFINITIONS_SNAPSHOT"


def definitions_names() -> dict[str, list[str]]:
    defs = load_defs()
    graph = defs.resolve_asset_graph()
    return {
        "assets": sorted(key.to_user_string() for key in graph.get_all_asset_keys()),
        "asset_checks": sorted(f"{key.asset_key.to_user_string()}:{key.name}" for key in graph.asset_check_keys),
        "jobs": sorted(job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__")),
        "schedules": sorted(f"{s.name} ({s.cron_schedule}) -> {s.job_name}" for s in defs.schedules),
        "sensors": sorted(s.name for s in defs.sensors),
        "resources": sorted(defs.resources),
    }


def test_definitions_match_the_snapshot():
    current = definitions_names()
    if os.environ.get(UPDATE_ENV) == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=2) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    for kind in expected.keys() | current.keys():
        added = sorted(set(current.get(kind, [])) - set(expected.get(kind, [])))
        removed = sorted(set(expected.get(kind, [])) - set(current.get(kind, [])))
        assert not (added or removed), (f"{kind}: added {added}, removed {removed}. If intended, regenerate with "
                                        f"{UPDATE_ENV}=1 (see this file's docstring) and commit the snapshot.")
    assert sum(map(len, current.values())) > 40
