"""Panel queries rewritten to render faster give the figures of the query they replaced, on the serving file the
pipeline published from the simulator, unfiltered and through the dashboard's global filters (time, organization)."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pytest

from pipeline.dashboard.source import Filters, open_serving
from tests.transform.marts_build import DAY

# (dashboard, panel) -> the query it replaced. activity_overview.total_events: the mart holds each activity once
# (its unique test on activity_id, models/marts/activity/activity_overview.yml), so counting rows is counting ids.
FORMER = {
    ("activity_overview", "total_events"):
        "SELECT count(DISTINCT activity_id) AS total_events FROM activity_overview",
}
NOON = datetime.fromisoformat(f"{DAY}T12:00:00+00:00")


@pytest.mark.parametrize("dashboard, panel", sorted(FORMER))
def test_rewritten_panel_gives_the_figures_of_the_query_it_replaced(built, dashboard, panel):
    with open_serving(built.serving) as source:
        organization = source.filter_choices()["organization"][0]
        figures = set()
        for filters in (Filters(), Filters(start=NOON), Filters(end=NOON, organization=organization),
                        Filters(start=datetime(2000, 1, 1, tzinfo=timezone.utc), end=NOON.replace(year=2001))):
            source.apply_filters(filters)
            new, former = source.run(dashboard, panel), source.query(FORMER[dashboard, panel])
            pd.testing.assert_frame_equal(new, former, check_dtype=False)
            figures.add(tuple(new.itertuples(index=False)))
        # the filters changed the figures, and something was counted: the comparison was not of empty results
        assert len(figures) == 4, figures
