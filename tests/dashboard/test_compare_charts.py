"""The compare page draws a metric chart for each numeric row that differs between the runs."""

from __future__ import annotations

import re

from runstack.repository import Repository


def test_compare_charts_the_numeric_rows_that_differ(sqlite_repo: Repository) -> None:
    from dashboard_support import client_for

    client, source = client_for(sqlite_repo)
    page = client.get("/compare", params=[("run", "r-1"), ("run", "r-2")])
    assert page.status_code == 200
    titles = re.findall(r"class='runstack-metric'.*?<title>(.*?)</title>", page.text, re.S)
    # load.rows is the same in both and train's text output is no number: neither is drawn.
    assert titles == ["train.accuracy over 2 runs", "train.lr over 2 runs"]
    source.store.dispose()
