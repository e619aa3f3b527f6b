"""The dashboard app (Streamlit): one page per dashboard of dbt_project/seeds/dashboards.csv and an alerts page.

Started by `make dashboard` / `make run` (pipeline/dashboard/__main__.py). Every page load opens the serving file
afresh, read-only (pipeline/dashboard/source.py), so a new publish shows on the next load or filter change. Panels are
the shipped `-- name:` queries, drawn as pipeline/dashboard/charts.py decides from their columns. Results are cached
per (file version, panel, filters, page) for a few minutes: a publish changes the version, hence the key.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import threading
import time
from datetime import datetime, timezone
from functools import partial

import duckdb
import pandas as pd
import streamlit as st

from pipeline.config import PROJECT_ROOT, Settings
from pipeline.dashboard import charts
from pipeline.dashboard.source import Filters, Source, open_serving, version
from pipeline.dashboard.timerange import DEFAULT_RANGE, RANGE_KEYS, is_stale, resolve_range
from pipeline.serving.panels import Panel, load_panels
from pipeline.settings import load_settings

PAGE_ROWS = 50            # rows per page of a table panel
CHART_ROWS = 20_000       # a chart panel never draws more rows than this
NO_DATA = "No data in this range"
SEARCH_PANEL = ("chats", "message_search")
CHAT_FILTERS = ("user_email", "role", "model", "content_type")
ACTIVITY_FILTERS = ("organization", "actor_type", "event_type")
FILTER_LABELS = {"organization": "Organization", "actor_type": "Actor type", "event_type": "Event type",
                 "user_email": "User", "role": "Role", "model": "Model", "content_type": "Content type"}
ALL = "(all)"


def serving_path() -> str:
    return str(Settings.from_env().serving_path)


def dagster_url() -> str:
    return load_settings().dagster_url.rstrip("/")


def dashboards() -> list[dict]:
    with open(PROJECT_ROOT / "dbt_project" / "seeds" / "dashboards.csv", newline="") as fh:
        return sorted(csv.DictReader(fh), key=lambda r: int(r["dashboard_number"]))


# -- cached reads (keyed on the file version: a new publish is a new key) -----------------------------------------------
@st.cache_data(ttl=600, max_entries=64, show_spinner=False)
def _choices(file_version: tuple) -> dict[str, list[str]]:
    with open_serving(file_version[0]) as source:
        return source.filter_choices()


@st.cache_data(ttl=600, max_entries=64, show_spinner=False)
def _freshness(file_version: tuple, _source: Source) -> tuple[datetime | None, datetime | None]:
    """(last publish, end of the newest window): a property of the file version, not of the page load."""
    return _source.freshness()


@st.cache_data(ttl=600, max_entries=256, show_spinner=False)
def _kinds(file_version: tuple, dashboard: str, _source: Source) -> dict[str, str]:
    """How each panel of a dashboard is drawn (from its columns: they depend on the file, not on the filters)."""
    return {p.name: charts.chart_kind(_source.describe(dashboard, p.name), p.chart)
            for p in load_panels()[dashboard].values() if (p.dashboard, p.name) != SEARCH_PANEL}


def _panel_rows(file_version: tuple, filters: Filters, dashboard: str, name: str, page: int, order: tuple,
           params: tuple, _source: Source) -> tuple[list, pd.DataFrame, int | None]:
    """(columns, rows, total rows for a table panel else None)."""
    params_ = dict(params)
    columns = _source.describe(dashboard, name, params_)
    kind = charts.chart_kind(columns, _source.panel(dashboard, name).chart)
    if kind == "table":
        frame = _source.run(dashboard, name, params_, limit=PAGE_ROWS, offset=page * PAGE_ROWS,
                            order_by=order[0] if order else None, descending=bool(order and order[1]))
        # a page that is not full ends the result: its rows give the total without running the query again
        last_page = len(frame) < PAGE_ROWS and (page == 0 or len(frame) > 0)
        total = page * PAGE_ROWS + len(frame) if last_page else _source.count(dashboard, name, params_)
        return columns, frame, total
    return columns, _source.run(dashboard, name, params_, limit=CHART_ROWS), None


_panel = st.cache_data(ttl=600, max_entries=4096, show_spinner=False)(_panel_rows)


def _csv(path: str, filters: Filters, dashboard: str, name: str, params: dict) -> bytes:
    """The whole result of a panel as CSV, computed when the button is clicked (its own connection)."""
    with open_serving(path) as source:
        source.apply_filters(filters)
        return source.run(dashboard, name, params).to_csv(index=False).encode()


# -- warming: after each publish, the default view of every page is computed once in the background -------------------
def warm(path: str, file_version: tuple) -> None:
    """Fill the caches exactly as a page load with the default filters would (same keys), so the first visitor after
    a publish does not wait for the queries."""
    _choices(file_version)
    with open_serving(path) as source:
        _, anchor = source.freshness()
        filters = Filters(*resolve_range(DEFAULT_RANGE, anchor))
        source.apply_filters(filters)
        for dashboard in dashboards():
            for panel in load_panels()[dashboard["dashboard"]].values():
                if (panel.dashboard, panel.name) != SEARCH_PANEL:
                    _panel(file_version, filters, panel.dashboard, panel.name, 0, (), (), source)


def _warm_loop(path: str) -> None:
    seen = None
    while True:
        try:
            if os.path.exists(path) and (current := version(path)) != seen:
                started = time.monotonic()
                warm(path, current)
                seen = current
                print(f"dashboards warmed for the publish of {path} in {time.monotonic() - started:.1f} s", flush=True)
        except Exception:  # a file replaced mid-way, a bad publish: try again on the next tick
            logging.getLogger(__name__).exception("warming the dashboards failed")
        time.sleep(5)


@st.cache_resource
def start_warmer(path: str) -> threading.Thread:
    """One background thread per app process and serving path (cache_resource: created once, shared by sessions)."""
    thread = threading.Thread(target=_warm_loop, args=(path,), name="dashboard-warmer", daemon=True)
    thread.start()
    return thread


# -- page parts -------------------------------------------------------------------------------------------------------
def freshness_bar(source: Source, file_version: tuple) -> datetime | None:
    published, newest = _freshness(file_version, source)
    now = datetime.now(timezone.utc)
    text = (f"Published {published:%Y-%m-%d %H:%M:%S} UTC" if published else "Never published") + \
        (f" · newest window ends {newest:%Y-%m-%d %H:%M} UTC" if newest else " · no data yet")
    with st.container(key="freshness"):
        if is_stale(published, now):
            age = f"{(now - published).total_seconds() / 60:,.0f} minutes ago" if published else "never"
            st.warning(f"Stale data: the last publish was {age} (more than 15 minutes). {text}", icon="⏳")
        else:
            st.caption(text)
    return newest


def filter_sidebar(source: Source, file_version: tuple, anchor: datetime | None, names: tuple[str, ...]) -> Filters:
    choices = _choices(file_version)
    with st.sidebar:
        st.subheader("Filters")
        label = st.selectbox("Time range", list(RANGE_KEYS.values()), key="range", bind="query-params",
                             index=list(RANGE_KEYS).index(DEFAULT_RANGE))
        key = {v: k for k, v in RANGE_KEYS.items()}[label]
        custom = None
        if key == "custom":
            default = (anchor or datetime.now(timezone.utc)).date()
            picked = st.date_input("Days (UTC)", value=(default, default), key="days")
            custom = tuple(picked) if isinstance(picked, (tuple, list)) and len(picked) == 2 else None
        start, end = resolve_range(key, anchor, custom)
        values = {}
        for name in names:
            options = [ALL, *choices.get(name, [])]
            value = st.selectbox(FILTER_LABELS[name], options, key=name, bind="query-params")
            values[name] = None if value == ALL else value
        if start or end:
            st.caption(f"From {start:%Y-%m-%d %H:%M} UTC" if start else "From the start",
                       help="Relative ranges end at the newest window the serving file holds.")
    return Filters(start=start, end=end, **values)


def title_case(name: str) -> str:
    return name.replace("_", " ").capitalize()


def render_panel(source: Source, file_version: tuple, filters: Filters, panel: Panel, params: dict) -> None:
    with st.container(border=True, key=f"panel-{panel.name}"):
        st.markdown(f"**{title_case(panel.name)}**", help=panel.description or None)
        state_key = f"order-{panel.dashboard}-{panel.name}"
        order = st.session_state.get(state_key) or ()
        page = st.session_state.get(f"page-{panel.dashboard}-{panel.name}", 1) - 1
        # message text is never cached: each search goes through the privacy gate again
        rows = _panel_rows if (panel.dashboard, panel.name) == SEARCH_PANEL else _panel
        try:
            columns, frame, total = rows(file_version, filters, panel.dashboard, panel.name, page, tuple(order),
                                         tuple(sorted(params.items())), source)
        except duckdb.InvalidInputException as exc:
            if "search_messages:" not in str(exc):
                st.error(f"{panel.dashboard}.{panel.name} failed: {exc}")
                return
            # the privacy gate refused the term (too short, wildcard only): say so, it is not a failure
            st.warning(str(exc).split("search_messages:", 1)[1].strip(), icon="🔒")
            return
        except duckdb.Error as exc:
            st.error(f"{panel.dashboard}.{panel.name} failed: {exc}")
            return
        kind = charts.chart_kind(columns, panel.chart)
        try:
            draw(source, file_version, filters, panel, params, columns, frame, total, page, kind)
        except Exception as exc:  # noqa: BLE001 - one panel that cannot be drawn must not take the page down
            st.error(f"{panel.dashboard}.{panel.name} could not be drawn: {type(exc).__name__}: {exc}")


def draw(source: Source, file_version: tuple, filters: Filters, panel: Panel, params: dict, columns: list,
         frame: pd.DataFrame, total: int | None, page: int, kind: str) -> None:
    if total is None and frame.empty or total == 0:
        st.info(NO_DATA, icon="🛈")
    elif kind == "number" and len(frame) == 1:
        cells = st.columns(len(frame.columns))
        for cell, column in zip(cells, frame.columns):
            value = frame.iloc[0][column]
            cell.metric(title_case(column), "–" if pd.isna(value) else f"{value:,.0f}"
                        if float(value).is_integer() else f"{value:,.2f}")
    elif kind in ("line", "area"):
        st.altair_chart(charts.trend(frame, columns, kind), width="stretch")
    elif kind == "bar":
        st.altair_chart(charts.ranked_bars(frame, columns), width="stretch")
    elif kind == "geo":
        st.altair_chart(charts.country_bars(frame, columns), width="stretch")
    else:
        table(source, file_version, filters, panel, params, columns, frame, total, page)
    if total is None and not frame.empty and kind != "number":
        st.download_button("CSV", frame.to_csv(index=False).encode(), f"{panel.dashboard}-{panel.name}.csv",
                           "text/csv", key=f"csv-{panel.dashboard}-{panel.name}", on_click="ignore",
                           type="tertiary", icon=":material/download:")


def table(source: Source, file_version: tuple, filters: Filters, panel: Panel, params: dict, columns: list,
          frame: pd.DataFrame, total: int | None, page: int) -> None:
    """A sortable (whole result, server side), paged table with a CSV download of every row."""
    total = len(frame) if total is None else total
    pages = max(1, -(-total // PAGE_ROWS))
    st.dataframe(frame, hide_index=True, width="stretch", height=min(38 + 35 * len(frame), 400))
    left, middle, right, download = st.columns([3, 2, 2, 1], vertical_alignment="bottom")
    first = page * PAGE_ROWS + 1 if total else 0
    left.caption(f"Rows {first:,}–{min(total, (page + 1) * PAGE_ROWS):,} of {total:,}")
    sort_options = [None, *[(c, d) for c, _ in columns for d in (True, False)]]
    middle.selectbox("Sort", sort_options, key=f"order-{panel.dashboard}-{panel.name}", label_visibility="collapsed",
                     format_func=lambda o: "Sort: as queried" if o is None else f"{o[0]} {'↓' if o[1] else '↑'}")
    right.number_input("Page", 1, pages, key=f"page-{panel.dashboard}-{panel.name}", label_visibility="collapsed")
    download.download_button("CSV", partial(_csv, file_version[0], filters, panel.dashboard, panel.name, params),
                             f"{panel.dashboard}-{panel.name}.csv", "text/csv", on_click="ignore", type="tertiary",
                             key=f"csv-{panel.dashboard}-{panel.name}", icon=":material/download:")


def page_done(name: str) -> None:
    """The last element of every page: the browser tests and the benchmark wait for it."""
    with st.container(key="page-rendered"):
        st.caption(f"{name} · rendered {datetime.now(timezone.utc):%H:%M:%S} UTC · {serving_path()}")


def missing_file(path: str) -> None:
    st.warning(f"No serving file at {path} yet: start the pipeline (`make run`) or set COMPLIANCE_SERVING_PATH.")


def dashboard_page(dashboard: dict) -> None:
    name, path = dashboard["dashboard"], serving_path()
    st.title(dashboard["title"])
    if not os.path.exists(path):
        missing_file(path)
        return page_done(name)
    file_version = version(path)
    with open_serving(path) as source:
        anchor = freshness_bar(source, file_version)
        filters = filter_sidebar(source, file_version, anchor, CHAT_FILTERS if name == "chats" else ACTIVITY_FILTERS)
        source.apply_filters(filters)
        panels = [p for p in load_panels()[name].values() if (p.dashboard, p.name) != SEARCH_PANEL]
        kinds = _kinds(file_version, name, source)
        numbers = [p for p in panels if kinds[p.name] == "number"]
        plots = [p for p in panels if kinds[p.name] in ("line", "area", "bar", "geo")]
        tables = [p for p in panels if kinds[p.name] == "table"]
        for row in range(0, len(numbers), 3):
            for cell, panel in zip(st.columns(3), numbers[row:row + 3]):
                with cell:
                    render_panel(source, file_version, filters, panel, {})
        for row in range(0, len(plots), 2):
            for cell, panel in zip(st.columns(2), plots[row:row + 2]):
                with cell:
                    render_panel(source, file_version, filters, panel, {})
        for panel in tables:
            render_panel(source, file_version, filters, panel, {})
        if name == "chats":
            message_search(source, file_version, filters)
    page_done(name)


def message_search(source: Source, file_version: tuple, filters: Filters) -> None:
    """Privacy gate: message text only through search_messages(term), and only when the file has it (text storage on)."""
    if not source.has_message_search():
        return
    st.subheader("Message search")
    term = st.text_input("Search message text", key="q", bind="query-params",
                         placeholder="a word or phrase (no wildcards)", type="search")
    if term:
        render_panel(source, file_version, filters, load_panels()[SEARCH_PANEL[0]][SEARCH_PANEL[1]], {"term": term})


def alerts_page() -> None:
    st.title("Alerts")
    path = serving_path()
    if not os.path.exists(path):
        missing_file(path)
        return page_done("alerts")
    file_version = version(path)
    with open_serving(path) as source:
        anchor = freshness_bar(source, file_version)
        filters = filter_sidebar(source, file_version, anchor, ())
        source.apply_filters(filters)
        alerts = source.alerts()
        with st.container(key="panel-alerts"):
            if alerts.empty:
                st.info(NO_DATA, icon="🛈")
            else:
                delivered = alerts["delivered_at"].notna() if "delivered_at" in alerts else pd.Series(False, index=alerts.index)
                a, b, c = st.columns(3)
                a.metric("Open alerts", f"{len(alerts):,}")
                b.metric("Delivered", f"{int(delivered.sum()):,}")
                c.metric("Not delivered yet", f"{int((~delivered).sum()):,}")
                for monitor, group in alerts.groupby("monitor", sort=True):
                    with st.expander(f"{monitor} — {len(group)} alert{'s' * (len(group) != 1)}, "
                                     f"{int(group['event_count'].sum()):,} events", expanded=True):
                        view = pd.DataFrame({
                            "group": group["group_key"], "first seen": group["first_event_at"],
                            "last seen": group["last_event_at"], "events": group["event_count"],
                            "delivery": group["delivered_at"].map(
                                lambda t: "pending" if pd.isna(t) else f"delivered {t:%Y-%m-%d %H:%M} UTC")
                            if "delivered_at" in group else "unknown",
                            "Dagster run": group["run_id"].map(
                                lambda r: f"{dagster_url()}/runs/{r}" if isinstance(r, str) and r else None)
                            if "run_id" in group else None,
                            "alert": group["alert_id"]})
                        st.dataframe(view, hide_index=True, width="stretch", column_config={
                            "Dagster run": st.column_config.LinkColumn("Dagster run", display_text="open run")})
                st.subheader("Events of an alert")
                labels = {f"{r.monitor} · {r.group_key or '-'} · {r.first_event_at:%Y-%m-%d %H:%M}": r.alert_id
                          for r in alerts.itertuples()}
                picked = st.selectbox("Alert", list(labels), key="alert")
                alert = alerts.set_index("alert_id").loc[labels[picked]]
                ids = list(alert["activity_ids"])
                events = source.alert_events(ids, (alert["first_event_at"], alert["last_event_at"]))
                st.dataframe(events, hide_index=True, width="stretch")
                st.caption(f"{len(events):,} of {len(ids):,} events found in the marts")
                buffer = io.StringIO()
                alerts.drop(columns=["activity_ids"]).to_csv(buffer, index=False)
                st.download_button("CSV of all alerts", buffer.getvalue().encode(), "alerts.csv", "text/csv",
                                   on_click="ignore", type="tertiary", icon=":material/download:")
    page_done("alerts")


def home_page() -> None:
    st.title("Compliance dashboards")
    path = serving_path()
    if os.path.exists(path):
        with open_serving(path) as source:
            freshness_bar(source, version(path))
    else:
        missing_file(path)
    panels = load_panels()
    for dashboard in dashboards():
        name = dashboard["dashboard"]
        st.page_link(PAGES[name], label=f"{dashboard['dashboard_number']}. "
                     f"{dashboard['title']} — {len(panels.get(name, {}))} panels")
    st.page_link(PAGES["alerts"], label="Alerts raised by the monitors")
    page_done("home")


PAGES: dict[str, st.Page] = {}


def main() -> None:
    st.set_page_config(page_title="Compliance dashboards", layout="wide", page_icon="🛡️")
    if load_settings().dashboard_warm:
        start_warmer(serving_path())
    for dashboard in dashboards():
        render = partial(dashboard_page, dashboard)
        render.__name__ = dashboard["dashboard"]  # Streamlit names a page after its function
        PAGES[dashboard["dashboard"]] = st.Page(render, title=f"{dashboard['dashboard_number']}. {dashboard['title']}",
                                                url_path=dashboard["dashboard"])
    PAGES["alerts"] = st.Page(alerts_page, title="Alerts", url_path="alerts", icon="🚨")
    home = st.Page(home_page, title="Home", url_path="home", default=True, icon="🏠")
    st.navigation({"": [home], "Dashboards": [p for k, p in PAGES.items() if k != "alerts"],
                   "Monitors": [PAGES["alerts"]]}).run()


if __name__ == "__main__":  # `streamlit run` executes this file as __main__; importing it draws nothing
    main()
