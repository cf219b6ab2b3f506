"""The comparison of a chapter's smoke table with its recorded reference (``tests/smoke_params.py``)."""

from __future__ import annotations

import pandas as pd

from smoke_params import REFERENCE_DIR, SMOKE, compare, deterministic, load_reference, save_reference


def _table():
    return pd.DataFrame(dict(
        experiment=["a", "a", "scaling", "scaling"], model=["m", "m", None, None], trained=[True, False, None, None],
        method=["x", "y", "hiref", "hiref"], layer=[0, 1, -1, -1], seed=0, metric=["cost", "cost", "time_s", "cost"],
        value=[0.123456789, 2.5, 0.31, 7.0], time_s=[0.01, 0.02, 0.31, 0.31]))


def test_identical_tables_match_and_timings_are_left_out(tmp_path):
    ref = _table()
    path = save_reference("toy", ref, tmp_path)
    stored = pd.read_csv(path)
    assert "time_s" not in stored.columns and "time_s" not in set(stored.metric) and len(stored) == 3
    now = _table().assign(time_s=[9.0, 9.0, 9.0, 9.0])
    now.loc[2, "value"] = 123.0  # a wall time: not compared
    assert compare(now, load_reference("toy", tmp_path)) == []


def test_a_changed_number_row_or_label_is_reported(tmp_path):
    ref = _table()
    bumped = ref.copy()
    bumped.loc[0, "value"] += 1e-8
    assert compare(bumped, ref) and "value: 1 row(s) differ" in compare(bumped, ref)[0]
    tiny = ref.copy()
    tiny.loc[0, "value"] += 1e-12  # within 1e-10
    assert compare(tiny, ref) == []
    assert "rows" in compare(ref.drop(index=1), ref)[0]
    relabelled = ref.assign(method=["x", "z", "hiref", "hiref"])
    assert compare(relabelled, ref)[0].startswith("method:")
    assert "columns differ" in compare(ref.assign(extra=1.0), ref)[0]


def test_every_chapter_has_a_reference():
    for stem in SMOKE:
        table = load_reference(stem)
        assert len(table) and table.equals(deterministic(table))
    assert {p.stem for p in REFERENCE_DIR.glob("*.csv")} == set(SMOKE)
