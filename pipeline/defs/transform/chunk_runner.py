"""The chunks of a marts run before its last one, in one dbt process (`python -m pipeline.defs.transform.chunk_runner
<plan.json>`, started by the marts step): dbt is imported and the project parsed once, then one dbt command per
chunk, each with its range in the environment (macros/incremental_window.sql). A dbt process per chunk paid about
4 s of start-up (imports, parse, artifacts) each time: a month at the default volume is 12 of them.

The plan (JSON): {"chunks": [{"args": ["run"], "env": {"MARTS_WINDOW_MIN_DATE": ..., ...}}, ...],
"flags": [profile flags, e.g. --target], "selection": [--select/--exclude]}. Stops at the first chunk that fails (exit 1):
the step fails and records nothing, so the next marts run redoes every window of this one.
"""

from __future__ import annotations

import json
import os
import sys
import time


def resident_mb() -> float | None:
    """This process's resident memory now (Linux), in the step's log after each chunk: one process runs every chunk
    but the last, so its memory over a long run (a week's backfill is some 60 chunks at 1M activities a day) shows."""
    try:
        with open("/proc/self/status") as status:
            return next(round(int(line.split()[1]) / 1024) for line in status if line.startswith("VmRSS:"))
    except (OSError, StopIteration, ValueError):
        return None


def main(plan_path: str) -> int:
    from dbt.cli.main import dbtRunner

    plan = json.loads(open(plan_path).read())
    flags = plan["flags"]
    parsed = dbtRunner().invoke(["parse", *flags])
    if not parsed.success:
        print(f"dbt parse failed: {parsed.exception}", file=sys.stderr)
        return 1
    manifest = parsed.result
    for number, chunk in enumerate(plan["chunks"], start=1):
        started = time.monotonic()
        for key, value in chunk["env"].items():  # read by dbt when each invocation starts (its own env copy)
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        result = dbtRunner(manifest=manifest).invoke([*chunk["args"], *flags, *plan["selection"]])
        nodes = getattr(result.result, "results", None) or []
        failed = [r.node.unique_id for r in nodes if str(r.status) in ("error", "fail", "runtime error")]
        print(json.dumps({"chunk": number, "args": chunk["args"], "env": chunk["env"], "success": result.success,
                          "nodes": len(nodes), "failed": failed, "seconds": round(time.monotonic() - started, 2),
                          "rss_mb": resident_mb()}),
              flush=True)
        if not result.success:
            if result.exception is not None:
                print(f"dbt failed: {result.exception}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
