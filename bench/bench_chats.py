"""Chats and messages ingestion: messages/s and peak RSS of one ranged run over a generated day."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from bench.common import report, run_child
from simulator.process import SimulatorProcess

CHATS_PER_DAY = int(os.environ.get("BENCH_CHATS_PER_DAY", "3000"))


def main() -> None:
    args = ["--start", "2026-11-01T00:00:00Z", "--days", "1", "--volume", "1000", "--rate-limit", "0",
            "--chats-per-day", str(CHATS_PER_DAY)]
    with tempfile.TemporaryDirectory() as tmp, SimulatorProcess(args, startup_timeout=300) as sim:
        result = run_child("bench.chats_child", sim.base_url, str(Path(tmp) / "w.duckdb"), "2026-11-01-00:00",
                           "2026-11-01-23:55")
    report("chats_ingest", [
        ("chats", result["chats"]), ("messages", result["messages"]),
        ("wall seconds", result["seconds"]), ("fetch seconds", result["fetch_seconds"]),
        ("messages/s", result["messages"] / result["seconds"]),
        ("chats/s", result["chats"] / result["seconds"]),
        ("peak RSS MB", result["peak_rss_mb"]),
    ])


if __name__ == "__main__":
    main()
