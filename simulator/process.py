"""Run the simulator as a real subprocess on a loopback port (tests, demo, benchmarks).

    with SimulatorProcess(["--start", "2026-03-01T00:00:00Z", "--days", "1", "--faults", ""]) as sim:
        httpx.get(sim.base_url + "/v1/compliance/activities", headers={"x-api-key": ...})

`config_args` is either the CLI flags of `python -m simulator serve` or a SimConfig (handed over through a temporary
pickle file, so every field survives exactly). The process is always terminated on exit, also when the body raises.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: SIGTERM the simulator if the process that started it dies (no orphans after a killed test run)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class SimulatorError(RuntimeError):
    pass


class SimulatorProcess:
    def __init__(self, config_args: list[str] | Any = (), port: int = 0, *, host: str = "127.0.0.1",
                 startup_timeout: float = 60.0, env: dict[str, str] | None = None, log_level: str = "warning"):
        self.config_args = config_args
        self.host = host
        self.requested_port = port
        self.port = port
        self.startup_timeout = startup_timeout
        self.env = env
        self.log_level = log_level
        self.proc: subprocess.Popen | None = None
        self._tmpdir: tempfile.TemporaryDirectory | None = None
        self.log_path: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -------------------------------------------------------------------------------------------------- lifecycle

    def _args(self, tmp: Path) -> list[str]:
        if isinstance(self.config_args, (list, tuple)):
            extra = [str(a) for a in self.config_args]
        else:  # a SimConfig object
            cfg_file = tmp / "config.pickle"
            # dataclass fields only: non-field runtime state (locks, caches) never needs to cross
            cfg = self.config_args
            payload = ({f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
                       if dataclasses.is_dataclass(cfg) else cfg)
            cfg_file.write_bytes(pickle.dumps(payload))
            extra = ["--config-pickle", str(cfg_file)]
        if "--log-level" not in extra:
            extra += ["--log-level", self.log_level]
        return [sys.executable, "-m", "simulator", "serve", "--host", self.host, "--port", str(self.port)] + extra

    def start(self) -> "SimulatorProcess":
        self._tmpdir = tempfile.TemporaryDirectory(prefix="simulator-")
        tmp = Path(self._tmpdir.name)
        self.log_path = tmp / "simulator.log"
        env = dict(os.environ)
        env["PYTHONPATH"] = str(PROJECT_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.setdefault("PYTHONUNBUFFERED", "1")
        if self.env:
            env.update(self.env)
        # PDEATHSIG follows the starting *thread*: only tie the child's life to ours from the main thread
        tie = sys.platform == "linux" and threading.current_thread() is threading.main_thread()
        attempts = 3 if self.requested_port == 0 else 1
        for attempt in range(attempts):
            if self.requested_port == 0:
                self.port = free_port(self.host)
            with open(self.log_path, "ab") as logf:
                self.proc = subprocess.Popen(self._args(tmp), stdout=logf, stderr=subprocess.STDOUT, env=env,
                                             cwd=str(PROJECT_ROOT), stdin=subprocess.DEVNULL,
                                             preexec_fn=_die_with_parent if tie else None)
            try:
                self._wait_ready()
                return self
            except SimulatorError:
                self._kill()
                # A port grabbed by someone else between free_port() and bind: try another one.
                if attempt + 1 < attempts and "address already in use" in self.log_tail().lower():
                    continue
                self._cleanup()
                raise
        raise SimulatorError("could not start the simulator")  # pragma: no cover

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        url = self.base_url + "/_sim/health"
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc is None or self.proc.poll() is not None:
                    raise SimulatorError(f"simulator exited with {self.proc.returncode if self.proc else '?'} "
                                         f"during startup:\n{self.log_tail()}")
                try:
                    if client.get(url).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        raise SimulatorError(f"simulator not ready after {self.startup_timeout}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def _kill(self) -> None:
        p = self.proc
        if p is None or p.poll() is not None:
            return
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)

    def _cleanup(self) -> None:
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def stop(self) -> None:
        try:
            self._kill()
        finally:
            self._cleanup()

    def __enter__(self) -> "SimulatorProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -------------------------------------------------------------------------------------------------- admin API

    def _admin(self, method: str, path: str, **kw) -> Any:
        r = httpx.request(method, self.base_url + path, timeout=30.0, **kw)
        r.raise_for_status()
        return r.json()

    def health(self) -> dict:
        return self._admin("GET", "/_sim/health")

    def config(self) -> dict:
        return self._admin("GET", "/_sim/config")

    def stats(self) -> dict:
        return self._admin("GET", "/_sim/stats")

    def set_clock(self, now: str | None = None, *, advance_seconds: float | None = None, wall: bool = False,
                  frozen: bool = True) -> dict:
        body: dict[str, Any] = {}
        if wall:
            body["wall"] = True
        if now is not None:
            body["now"] = now
            body["frozen"] = frozen
        if advance_seconds is not None:
            body["advance_seconds"] = advance_seconds
        return self._admin("POST", "/_sim/clock", json=body)

    def set_faults(self, rates: dict | str, *, reseed: bool = False) -> dict:
        body = {"spec": rates} if isinstance(rates, str) else dict(rates)
        if reseed:
            body["_reseed"] = True
        return self._admin("POST", "/_sim/faults", json=body)

    def ground_truth(self, gte: str | None = None, lt: str | None = None) -> dict:
        params = {k: v for k, v in (("gte", gte), ("lt", lt)) if v}
        return self._admin("GET", "/_sim/ground-truth", params=params)
