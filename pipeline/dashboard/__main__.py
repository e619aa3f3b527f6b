"""`make dashboard`: the dashboard app alone, on COMPLIANCE_SERVING_PATH (default data/marts.duckdb).

Binds 127.0.0.1 by default (COMPLIANCE_DASHBOARD_HOST, COMPLIANCE_DASHBOARD_PORT=8501); COMPLIANCE_DAGSTER_URL is
where alert links point (default http://127.0.0.1:3000).
"""

from __future__ import annotations

import subprocess
import sys

from pipeline.dashboard.process import command, dashboard_url
from pipeline.settings import load_settings


def main() -> int:
    print(f"Dashboards: {dashboard_url()}  (serving file: {load_settings().serving_path})", flush=True)
    try:
        return subprocess.call(command())
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
