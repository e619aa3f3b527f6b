import os

import pytest

# Partitions are defined at import time from the environment: the tests' simulated days (November 2026) must be
# inside the partition range whatever the developer's environment says.
os.environ["COMPLIANCE_PARTITIONS_START"] = "2026-10-01T00:00:00Z"
# Tests build their own resources; never let a developer's real key or URL leak into a test run.
os.environ.pop("ANTHROPIC_COMPLIANCE_ACCESS_KEY", None)
os.environ.pop("COMPLIANCE_API_BASE_URL", None)
# The key is read from the environment only (no resource field): the tests use the simulator's demo key (not a
# secret), sent only to the loopback simulators (the allowed hosts).
os.environ["ANTHROPIC_COMPLIANCE_ACCESS_KEY"] = "sk-ant-api01-sim-full"
os.environ["COMPLIANCE_API_ALLOWED_HOSTS"] = "127.0.0.1"

DEMO_KEY = pytest.StashKey()  # the live demo process (tests/live), started at collection
SCENARIOS_KEY = pytest.StashKey()  # the backfill tests' Dagster deployments (tests/ingest/dagster_scenarios.py)
BACKFILL_TESTS = "tests/ingest/test_backfill_dagster.py"
BROWSER_TESTS = "tests/dashboard/test_dashboard_browser.py"


def uses_marts_build(item) -> bool:
    """Tests on the shared marts warehouse (tests/transform/marts_build.py): the `built` fixture, the browser tests."""
    return "built" in getattr(item, "fixturenames", ()) or item.nodeid.startswith(BROWSER_TESTS)


@pytest.hookimpl(trylast=True)  # after -k/-m deselection: only what will run is started
def pytest_collection_modifyitems(config, items):
    """The live-demo test runs last but its demo starts now: its minutes of schedule ticks overlap the other tests.
    The same for the backfill tests' Dagster deployments (they run just before it), and for the shared marts build
    (in a process of its own; its first user, tests/serve, comes minutes later: the browser tests, which would be the
    first, run just before the backfill tests)."""
    live = [item for item in items if item.nodeid.startswith("tests/live/")]
    backfill = [item for item in items if item.nodeid.startswith(BACKFILL_TESTS)]
    browser = [item for item in items if item.nodeid.startswith(BROWSER_TESTS)]
    later = live + backfill + browser
    items[:] = [item for item in items if item not in later] + browser + backfill + live
    if any(uses_marts_build(item) for item in items):
        from tests.transform.marts_build import start_background_build

        start_background_build()
    if backfill:
        from tests.support import postgres

        if postgres.available():  # else the tests' own fixture starts them (and skips without PostgreSQL)
            from tests.ingest.dagster_scenarios import Scenarios

            config.stash[SCENARIOS_KEY] = Scenarios()
    if live:
        from tests.live.demo_process import DemoProcess

        config.stash[DEMO_KEY] = DemoProcess.start()


def pytest_unconfigure(config):
    demo = config.stash.get(DEMO_KEY, None)
    if demo is not None:
        demo.interrupt()
    scenarios = config.stash.get(SCENARIOS_KEY, None)
    if scenarios is not None:
        scenarios.close()
