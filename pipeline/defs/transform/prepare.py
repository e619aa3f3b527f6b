"""Build the dbt manifest Dagster loads the dbt assets from: `python -m pipeline.defs.transform.prepare [--force]`.

Runs `dbt parse` (no warehouse connection, no dbt packages) when a file of dbt_project/ is newer than the manifest.
`make setup` calls it, so editing a model and running `make test` or `make run` picks the change up.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def _stale(project_dir: Path, manifest: Path) -> bool:
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    sources = [p for sub in ("models", "macros", "seeds") for p in (project_dir / sub).rglob("*")]
    sources += [project_dir / "dbt_project.yml", project_dir / "profiles.yml"]
    return any(p.is_file() and p.stat().st_mtime > built for p in sources)


def main() -> int:
    started = time.monotonic()
    # project.py parses on import only when the manifest is missing.
    from pipeline.defs.transform.project import DBT_PROJECT_DIR
    from pipeline.defs.transform.project import dbt_project as project

    # the marts' rule matching follows the monitors' configuration (pipeline/monitors/dbt_rules.py)
    from pipeline.monitors.config import load_config
    from pipeline.monitors.dbt_rules import write_macro

    write_macro(load_config())
    if "--force" not in sys.argv[1:] and not _stale(DBT_PROJECT_DIR, Path(project.manifest_path)):
        print(f"dbt manifest up to date: {project.manifest_path}")
        return 0
    # Parse with the warehouse settings the runs will use: dbt re-parses the whole project when an env var read by
    # profiles.yml differs from the parse that wrote the partial-parse state.
    from pipeline.defs.transform.project import dbt_environment, prepare
    from pipeline.config import Settings

    settings = Settings.from_env()
    with dbt_environment(str(settings.warehouse_path)):
        prepare(project)
    print(f"dbt manifest: {project.manifest_path} ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
