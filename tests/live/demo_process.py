"""`python -m pipeline.demo` (what `make run` runs) as a background process for the live test.

It is started when the live test is collected, before every other test, because its assertions need wall-clock
minutes of schedule ticks: the wait overlaps the rest of the suite instead of adding to it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config import PROJECT_ROOT

LAG_MINUTES = 1


@dataclass
class DemoProcess:
    root: Path
    env: dict[str, str]
    proc: subprocess.Popen
    started: float = field(default_factory=time.time)

    @classmethod
    def start(cls) -> "DemoProcess":
        root = Path(tempfile.mkdtemp(prefix="live-demo-"))
        env = {
            **os.environ,
            "DAGSTER_HOME": str(root / "dagster_home"),
            "COMPLIANCE_WAREHOUSE_PATH": str(root / "data" / "warehouse.duckdb"),
            "COMPLIANCE_SERVING_PATH": str(root / "data" / "marts.duckdb"),
            "COMPLIANCE_INGEST_LAG_MINUTES": str(LAG_MINUTES),
            "COMPLIANCE_REPULL_EVERY_MINUTES": "5",
            "DEMO_HOURS": "1",
            # 0: each server picks a free port when it starts (the simulator another if that one was taken
            # meanwhile); the test reads the URLs the demo printed. A port picked here, at collection, was once taken
            # by the time the demo bound it on a busy machine.
            "DEMO_PORT": "0",
            "DEMO_DASHBOARD_PORT": "0",
            "DEMO_SIMULATOR_PORT": "0",
            # More late-indexed events than the default 0.5 %, so that every re-pull has some to find.
            "DEMO_SIMULATOR_ARGS": "--late-share 0.2 --volume 100000",
        }
        log = open(root / "demo.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "pipeline.demo"], cwd=PROJECT_ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        return cls(root, env, proc)

    @property
    def home(self) -> Path:
        return Path(self.env["DAGSTER_HOME"])

    @property
    def serving_path(self) -> Path:
        return Path(self.env["COMPLIANCE_SERVING_PATH"])

    @property
    def warehouse_path(self) -> Path:
        return Path(self.env["COMPLIANCE_WAREHOUSE_PATH"])

    @property
    def ui_url(self) -> str:
        """The Dagster UI's URL, as the demo printed it."""
        return self._printed_url(r"Dagster UI: (http://\S+)")

    @property
    def simulator_url(self) -> str:
        """The simulator's URL, as the demo printed it."""
        return self._printed_url(r"Simulator \(live mode\) on (http://\S+)")

    def _printed_url(self, pattern: str) -> str:
        found = re.search(pattern, self.output())
        assert found, self.output()[-3000:]
        return found.group(1)

    def output(self) -> str:
        return (self.root / "demo.log").read_text(errors="replace")

    def interrupt(self, timeout: float = 120) -> int:
        """Ctrl-C, as a user would; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return -9
        return self.proc.returncode
