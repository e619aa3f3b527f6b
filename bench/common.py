"""Shared helpers of the benchmarks: a results table, child processes that report their own peak memory."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
FULL_KEY = "sk-ant-api01-sim-full"  # the simulator's built-in demo key (not a secret)


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def report(name: str, rows: list[tuple[str, object]]) -> None:
    """Print a result block and keep it as JSON in bench/results/ (git-ignored)."""
    print(f"\n== {name} ({machine()})")
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        if isinstance(value, float):  # ratios and seconds near a target need their second digit
            value = f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"
        elif isinstance(value, int):
            value = f"{value:,}"
        print(f"  {key.ljust(width)}  {value}")
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(dict(rows), default=str, indent=2))


def run_child(module: str, *args: str, env: dict | None = None, timeout: float = 1800,
              rss_limit_mb: float | None = None) -> dict:
    """Run `python -m module args...` in a fresh process; it prints one JSON object on its last stdout line
    (its own figures, including `peak_rss_mb` of that process alone). With `rss_limit_mb`, the child is killed
    when its resident memory passes the limit (a runaway baseline must not take the machine down) and a
    RuntimeError says so."""
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", module, *args], stdout=out, stderr=err, text=True,
                                env={**os.environ, **(env or {})})
        killed = None
        while proc.poll() is None:
            elapsed = time.monotonic() - started
            rss = _rss_mb(proc.pid)
            if rss_limit_mb is not None and rss > rss_limit_mb:
                killed = f"killed: resident memory passed {rss_limit_mb:,.0f} MB after {elapsed:.0f} s"
            elif elapsed > timeout:
                killed = f"killed: still running after {timeout:.0f} s"
            if killed:
                proc.kill()
                proc.wait()
                break
            time.sleep(0.2)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if killed or proc.returncode != 0:
        errors = [line for line in stderr.splitlines() if "Error" in line or "Exception" in line]
        raise RuntimeError(f"{module} failed: {killed or ' | '.join(errors[-3:])}\n{stderr[-2000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result.setdefault("wall_seconds", time.monotonic() - started)
    return result


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def peak_rss_mb() -> float:
    """Peak resident memory of this process since it started. On Linux, VmHWM of /proc/self/status: ru_maxrss is
    carried across fork + exec, so a child of a big parent would report the parent's peak as its own."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
