"""How a panel is drawn, decided from its result columns (or its `-- chart:` annotation), and the charts themselves.

Pure functions: `chart_kind` is unit-tested on the shapes of the shipped panels; the Altair builders only shape.
"""

from __future__ import annotations

import csv
from functools import cache

import altair as alt
import pandas as pd

from pipeline.config import PROJECT_ROOT

NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
           "FLOAT", "DOUBLE", "DECIMAL")
BAR_TOP = 25            # a ranked bar chart shows the top 25 rows (the full result stays downloadable)
EMBARGO_COLOR, OTHER_COLOR = "#d62728", "#4c78a8"


def column_class(duckdb_type: str, name: str = "") -> str:
    t = duckdb_type.upper()
    if name.endswith("_code") and t.startswith(NUMERIC):
        return "text"  # a code (HTTP status) labels a bar, it is not a measure
    if t.endswith("[]") or t.startswith(("STRUCT", "MAP", "LIST")):
        return "other"
    if t.startswith(("TIMESTAMP", "DATE")):
        return "time"
    if t.startswith(NUMERIC):
        return "number"
    if t == "BOOLEAN":
        return "bool"
    if t == "VARCHAR":
        return "text"
    return "other"


def chart_kind(columns: list[tuple[str, str]], annotation: str | None = None) -> str:
    """number | line | area | bar | geo | table, from (name, DuckDB type) of the result columns.

    - only numbers: big numbers (one row) — a multi-row numeric result is drawn as a table by the caller;
    - a time first column, numbers after, at most one label (the series): a trend (stacked area when by series);
    - geo_* first with a count: the country chart;
    - one or two labels and at most three numbers, no time: ranked bars (top-N / distribution);
    - anything else (detail rows, timestamps among other columns, lists): a table.
    """
    if annotation:
        return annotation
    classes = [column_class(t, n) for n, t in columns]
    names = [n for n, _ in columns]
    numbers = classes.count("number")
    labels = sum(c in ("text", "bool") for c in classes)
    if classes and all(c == "number" for c in classes):
        return "number"
    if classes and classes[0] == "time" and numbers >= 1 and "time" not in classes[1:] and "other" not in classes \
            and labels <= 1:
        return "area" if labels == 1 else "line"
    if names and names[0].startswith("geo_") and numbers >= 1 and "time" not in classes:
        return "geo"
    if 1 <= labels <= 2 and 1 <= numbers <= 3 and "time" not in classes and "other" not in classes \
            and classes[0] in ("text", "bool"):
        return "bar"
    return "table"


def split_columns(frame: pd.DataFrame, columns: list[tuple[str, str]]) -> tuple[list[str], list[str], list[str]]:
    """(time columns, label columns, number columns) in result order."""
    kinds = {n: column_class(t, n) for n, t in columns}
    return ([n for n in frame.columns if kinds.get(n) == "time"],
            [n for n in frame.columns if kinds.get(n) in ("text", "bool")],
            # coordinates are not measures: a geo panel's measure is its count
            [n for n in frame.columns if kinds.get(n) == "number" and not n.startswith("geo_")])


def trend(frame: pd.DataFrame, columns: list[tuple[str, str]], kind: str) -> alt.Chart:
    times, labels, numbers = split_columns(frame, columns)
    x, y = times[0], numbers[0]
    data = frame.copy()
    data[x] = pd.to_datetime(data[x], utc=True).dt.tz_localize(None)  # axis in UTC, as every timestamp of the app
    base = alt.Chart(data)
    mark = base.mark_area(opacity=0.85) if kind == "area" else base.mark_line(point=len(data) < 60)
    encoding = {"x": alt.X(f"{x}:T", title=f"{x} (UTC)"), "y": alt.Y(f"{y}:Q", stack=kind == "area"),
                "tooltip": list(data.columns)}
    if labels:
        data[labels[0]] = data[labels[0]].astype(object).where(data[labels[0]].notna(), "(none)").astype(str)
        encoding["color"] = alt.Color(f"{labels[0]}:N", legend=alt.Legend(orient="bottom", columns=3))
    elif len(numbers) > 1:  # several measures over time: one line each
        data = data.melt(id_vars=[x], value_vars=numbers, var_name="measure", value_name="value")
        base = alt.Chart(data)
        mark = base.mark_line(point=len(data) < 60)
        encoding.update(y=alt.Y("value:Q"), color=alt.Color("measure:N", legend=alt.Legend(orient="bottom")),
                        tooltip=[x, "measure", "value"])
    return mark.encode(**encoding).properties(height=260)


def ranked_bars(frame: pd.DataFrame, columns: list[tuple[str, str]]) -> alt.Chart:
    _, labels, numbers = split_columns(frame, columns)
    value = numbers[0]
    data = frame.sort_values(value, ascending=False).head(BAR_TOP).copy()
    data["label"] = data[labels].astype(object).where(data[labels].notna(), "(none)").astype(str) \
        .agg(" · ".join, axis=1)
    return alt.Chart(data).mark_bar().encode(
        x=alt.X(f"{value}:Q"), y=alt.Y("label:N", sort="-x", title=" · ".join(labels)),
        tooltip=list(frame.columns)).properties(height=max(120, 22 * len(data)))


@cache
def embargoed_countries() -> frozenset[str]:
    """Countries embargoed as a whole (dbt seed embargoed_regions: its single source); regions within a country
    (subdivision rows) are highlighted only by panels that carry `is_embargoed` per row."""
    with open(PROJECT_ROOT / "dbt_project" / "seeds" / "embargoed_regions.csv", newline="") as fh:
        return frozenset(r["country_iso"] for r in csv.DictReader(fh) if not r["subdivision_iso"])


def country_frame(frame: pd.DataFrame, columns: list[tuple[str, str]]) -> pd.DataFrame:
    """Events per country (summing cities / coordinates), flagged embargoed by the panel's own `is_embargoed`
    when it has one, else by the embargoed-country list."""
    _, _, numbers = split_columns(frame, columns)
    value = numbers[0]
    data = frame.copy()
    iso = data["geo_country_iso"] if "geo_country_iso" in data else pd.Series([None] * len(data), index=data.index)
    name = data["geo_country_name"] if "geo_country_name" in data else iso
    data["country"] = name.fillna(iso).fillna("unknown").astype(str)
    if "is_embargoed" in data:
        data["embargoed"] = data["is_embargoed"].fillna(False).astype(bool)
    else:
        data["embargoed"] = iso.isin(embargoed_countries())
    return (data.groupby("country", as_index=False).agg(**{value: (value, "sum"), "embargoed": ("embargoed", "max")})
            .sort_values(value, ascending=False))


def country_bars(frame: pd.DataFrame, columns: list[tuple[str, str]]) -> alt.Chart:
    data = country_frame(frame, columns).head(BAR_TOP)
    value = [c for c in data.columns if c not in ("country", "embargoed")][0]
    data["region"] = data["embargoed"].map({True: "embargoed", False: "other"})
    return alt.Chart(data).mark_bar().encode(
        x=alt.X(f"{value}:Q"), y=alt.Y("country:N", sort="-x"),
        color=alt.Color("region:N", scale=alt.Scale(domain=["embargoed", "other"],
                                                     range=[EMBARGO_COLOR, OTHER_COLOR]),
                        legend=alt.Legend(orient="bottom", title=None)),
        tooltip=["country", value, "region"]).properties(height=max(120, 22 * len(data)))
