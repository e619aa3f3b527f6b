"""The dashboard app in a real browser (headless Debian Chromium over the DevTools protocol), on a serving file the
pipeline published from the simulator (tests/transform/marts_build.py, then a real `publish` into a private path).

Screenshots of every page go to data/screenshots/dashboards/ (README: Dashboards), or $DASHBOARD_SCREENSHOTS.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pytest

from pipeline.config import PROJECT_ROOT
from pipeline.dashboard.app import dashboards
from pipeline.dashboard.process import DashboardProcess
from pipeline.demo.dagster_dev import free_port
from pipeline.serving.panels import load_panels, run_panel
from pipeline.serving.publish import publish
from tests.support.browser import Browser, number, panel_states_js
from tests.transform.marts_build import EXTRA_END, EXTRA_START, marts_build

# the module fixture may build the shared marts warehouse (a simulated day through Dagster) in the first setup
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
SCREENSHOTS = Path(os.environ.get("DASHBOARD_SCREENSHOTS") or PROJECT_ROOT / "data" / "screenshots" / "dashboards")
DAGSTER_URL = "http://127.0.0.1:3999"
ERRORS_JS = "document.querySelectorAll('[data-testid=\"stException\"], [data-testid=\"stAlertContentError\"]').length"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A private warehouse copy and the serving file published from it (the publish test changes both)."""
    build = marts_build()
    directory = tmp_path_factory.mktemp("dashboard")
    warehouse = directory / "warehouse.duckdb"
    shutil.copyfile(build.warehouse, warehouse)
    serving = directory / "marts.duckdb"
    result = publish(warehouse, serving, include_message_text=True)
    assert result.message_text_rows, "the fixture stores message text: the search must be published"
    return warehouse, serving


@pytest.fixture(scope="module")
def app(served, tmp_path_factory):
    _, serving = served
    log = tmp_path_factory.mktemp("dashboard-log") / "streamlit.log"
    with DashboardProcess(port=free_port(), env={"COMPLIANCE_SERVING_PATH": str(serving),
                                                 "COMPLIANCE_DAGSTER_URL": DAGSTER_URL}, log_path=log) as process:
        yield process


@pytest.fixture(scope="module")
def browser():
    with Browser() as chromium:
        yield chromium


def scalar(path: Path, sql: str, params: list | None = None):
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(sql, params or []).fetchone()[0]


def metric(states: list[dict], panel: str, index: int = 0) -> float:
    return number(next(s for s in states if s["panel"] == panel)["metrics"][index])


def test_every_page_renders_every_panel(app, browser, served):
    _, serving = served
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    panels = load_panels()
    pages = [(d["dashboard"], set(panels[d["dashboard"]]) - {"message_search"}) for d in dashboards()]
    pages += [("alerts", {"alerts"}), ("home", set())]
    assert len(pages) == 18
    for page, expected in pages:
        browser.open_page(f"{app.url}/{page}")
        states = browser.evaluate(panel_states_js())
        assert {s["panel"] for s in states} == expected, page
        for state in states:
            drawn = state["chart"] or state["metrics"] or (state["table"] and number(state["rows"] or "0") > 0) \
                or (state["table"] and page == "alerts")
            assert drawn or state["no_data"], (page, state)
            assert not state["error"], (page, state)
        assert browser.evaluate(ERRORS_JS) == 0, page
        if expected:  # the simulated day has every activity type: every page shows data, not only empty panels
            assert any(not s["no_data"] for s in states), page
        browser.screenshot(SCREENSHOTS / f"{page}.png")
        assert (SCREENSHOTS / f"{page}.png").stat().st_size > 10_000
    assert not browser.errors, browser.errors[:3]


def test_filters_change_the_figures(app, browser, served):
    _, serving = served
    browser.open_page(f"{app.url}/activity_overview")
    total = metric(browser.evaluate(panel_states_js()), "total_events")
    assert total == scalar(serving, "SELECT count(DISTINCT activity_id) FROM activity_overview")

    browser.open_page(f"{app.url}/activity_overview?event_type=sso_login_failed")
    filtered = metric(browser.evaluate(panel_states_js()), "total_events")
    assert filtered == scalar(serving, "SELECT count(*) FROM activity_overview WHERE event_type = 'sso_login_failed'")
    assert 0 < filtered < total

    # relative ranges end at the newest window held (the extra window, 00:05 on the next day)
    browser.open_page(f"{app.url}/activity_overview?range=Last+hour")
    last_hour = metric(browser.evaluate(panel_states_js()), "total_events")
    assert last_hour == scalar(serving, "SELECT count(*) FROM activity_overview WHERE created_at >= "
                                        "(SELECT max(created_5min) FROM activity_overview) + INTERVAL 5 MINUTE "
                                        "- INTERVAL 1 HOUR")
    assert 0 < last_hour < total

    browser.open_page(f"{app.url}/chats?role=user")
    states = browser.evaluate(panel_states_js())
    assert metric(states, "active_users", 2) == scalar(serving, "SELECT count(*) FROM chats WHERE role = 'user' "
                                                                          "AND NOT is_chat_deleted")
    assert metric(states, "active_users", 2) < scalar(serving, "SELECT count(*) FROM chats WHERE NOT is_chat_deleted")

    # message search only through the privacy gate: a term shows rows; a wildcard is refused, shown as a notice
    browser.open_page(f"{app.url}/chats?q=budget")
    states = {s["panel"]: s for s in browser.evaluate(panel_states_js())}
    with duckdb.connect(str(serving), read_only=True) as conn:  # the panel: deleted chats left out
        found = len(run_panel(conn, "chats", "message_search", {"term": "budget"}))
    assert number(states["message_search"]["rows"]) == found > 0
    browser.open_page(f"{app.url}/chats?q=%25%25%25")
    assert "wildcard-only search terms are refused" in browser.evaluate("document.body.innerText")
    assert browser.evaluate(ERRORS_JS) == 0

    browser.open_page(f"{app.url}/alerts")
    states = browser.evaluate(panel_states_js())
    assert metric(states, "alerts") == scalar(serving, "SELECT count(*) FROM alerts") > 0


def test_a_publish_is_picked_up_on_the_next_load_without_a_lock(app, browser, served):
    warehouse, serving = served
    browser.open_page(f"{app.url}/activity_overview?range=All+time")
    before = metric(browser.evaluate(panel_states_js()), "total_events")
    # the page is open, and the app holds no lock on the serving file: a writer could open it right now
    duckdb.connect(str(serving)).close()
    with duckdb.connect(str(warehouse)) as conn:  # the extra window disappears from the marts, then a publish
        removed = conn.execute("DELETE FROM marts.activity_overview WHERE created_at >= ?", [EXTRA_START]).fetchone()[0]
        # and from its rollup, as the marts build that rebuilt the window would (the count panels read it)
        conn.execute("DELETE FROM marts.activity_overview_5min WHERE created_5min >= ?", [EXTRA_START])
        # recorded as a marts build records the ranges it rewrote: what the publish exports again
        conn.execute("INSERT INTO transform.mart_builds VALUES (?, ?, false, now())", [EXTRA_START, EXTRA_END])
    assert removed > 0
    publish(warehouse, serving, include_message_text=False)
    browser.open_page(f"{app.url}/activity_overview?range=All+time")
    after = metric(browser.evaluate(panel_states_js()), "total_events")
    assert after == before - removed == scalar(serving, "SELECT count(*) FROM activity_overview")
    # text storage off in this publish: the message search is gone from the chats page
    browser.open_page(f"{app.url}/chats?q=budget")
    assert "message_search" not in {s["panel"] for s in browser.evaluate(panel_states_js())}
    assert "Message search" not in browser.evaluate("document.body.innerText")
