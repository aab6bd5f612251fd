"""Drift chart model-change labels never sit on each other (issue 19 #9): one label per day, neighbours staggered."""

from __future__ import annotations

from types import SimpleNamespace

from ui.charts import drift

DAY = 86400


def test_changes_on_one_day_share_a_label_and_close_days_are_staggered():
    series = {"m1": [{"day_start": d * DAY, "refusal_rate": 0.01} for d in range(10, 16)]}
    changes = [{"day_start": 12 * DAY, "tier": "capable", "from": "a", "to": "b"},
               {"day_start": 12 * DAY, "tier": "fast", "from": "c", "to": "d"},
               {"day_start": 13 * DAY, "tier": "code", "from": "e", "to": "f"}]
    fig = drift(SimpleNamespace(series=series, changes=changes), "refusal_rate")
    notes = fig.layout.annotations
    assert len(notes) == 2 and len(fig.layout.shapes) == 2
    assert "capable: a → b<br>fast: c → d" == notes[0].text
    assert notes[0].yshift != notes[1].yshift  # the next day's label sits at another height
    assert fig.layout.margin.t >= 60 + 14 * 2 and fig.layout.margin.l == 10  # room above; other margins kept


def test_no_change_no_label():
    fig = drift(SimpleNamespace(series={"m": [{"day_start": DAY, "refusal_rate": 0.0}]}, changes=[]), "refusal_rate")
    assert not fig.layout.annotations and fig.layout.margin.t == 40
