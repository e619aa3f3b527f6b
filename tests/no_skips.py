"""pytest plugin for CI (`.ci/run`: `pytest -p tests.no_skips`): a skipped test fails the session. Locally a test
may skip when its environment is missing (e.g. DUCKDB1_PYTHON outside `make test`); in CI everything must run."""

from __future__ import annotations

import pytest


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        reporter.ensure_newline()
        for report in skipped:
            reporter.write_line(f"SKIPPED IN CI (not allowed): {report.nodeid}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
