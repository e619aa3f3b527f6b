"""`python -m bench [name ...]`: run the named benchmarks (default: all) and print their figures."""

from __future__ import annotations

import importlib
import sys

ALL = ["bench_api", "bench_ingest", "bench_chats", "bench_backfill", "bench_incremental", "bench_monitors",
       "bench_refresh_marts", "bench_scale", "bench_dashboard"]


def main() -> None:
    names = sys.argv[1:] or ALL
    for name in names:
        module = importlib.import_module(f"bench.{name if name.startswith('bench_') else 'bench_' + name}")
        module.main()


if __name__ == "__main__":
    main()
