"""Starting the dashboard app: the `streamlit run` command line, and a managed subprocess for `make run` and tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from pipeline.settings import load_settings

APP = Path(__file__).with_name("app.py")


def host() -> str:
    return load_settings().dashboard_host


def port() -> int:
    return load_settings().dashboard_port


def dashboard_url(port_: int | None = None) -> str:
    return f"http://{host()}:{port_ or port()}"


def command(port_: int | None = None) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", host(),
            "--server.port", str(port_ or port()), "--server.headless", "true",
            "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
            "--global.developmentMode", "false", "--client.toolbarMode", "viewer"]


class DashboardProcess:
    """`streamlit run` in its own process group; waits until it answers its health check."""

    def __init__(self, *, port: int | None = None, env: dict[str, str] | None = None, log_path: Path | None = None):
        self.port = port or globals()["port"]()
        self.url = dashboard_url(self.port)
        self.env = env or {}
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "DashboardProcess":
        log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(command(self.port), env={**os.environ, **self.env}, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the dashboard app exited with {self.proc.returncode}"
                                   + (f": {self.log_path.read_text()[-2000:]}" if self.log_path else ""))
            try:
                if httpx.get(f"{self.url}/_stcore/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.__exit__()
        raise TimeoutError("the dashboard app did not answer within 60 s")

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
