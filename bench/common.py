"""Shared helpers of the benchmarks: a results table, child processes that report their own peak memory."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
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
        if isinstance(value, float):
            value = f"{value:,.1f}"
        elif isinstance(value, int):
            value = f"{value:,}"
        print(f"  {key.ljust(width)}  {value}")
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(dict(rows), default=str, indent=2))


def run_child(module: str, *args: str, env: dict | None = None, timeout: float = 1800) -> dict:
    """Run `python -m module args...` in a fresh process; it prints one JSON object on its last stdout line
    (its own figures, including `peak_rss_mb` of that process alone)."""
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, **(env or {})})
    if out.returncode != 0:
        errors = [line for line in out.stderr.splitlines() if "Error" in line or "Exception" in line]
        raise RuntimeError(f"{module} failed: {' | '.join(errors[-3:])}\n{out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result.setdefault("wall_seconds", time.monotonic() - started)
    return result


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
