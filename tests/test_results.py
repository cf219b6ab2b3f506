"""Tests for otlens.results: the tidy tables every chapter saves."""

from __future__ import annotations

import pandas as pd
import pytest

from otlens.results import RESULT_COLUMNS, load_results, save_results


def _table() -> pd.DataFrame:
    row = dict(experiment="e", model="m", trained=True, method="x", layer=0, seed=0, metric="cost", value=1.5)
    return pd.DataFrame([{"extra": "first", **row}, {"extra": "second", **row, "layer": 1}])


def test_save_results_writes_the_table_and_returns_nothing(results_dir):
    # A notebook cell ending in save_results displayed the returned PosixPath on the page.
    assert save_results(_table(), "chapter") is None
    back = load_results("chapter")
    assert list(back.columns) == [*RESULT_COLUMNS, "extra"]  # the contract's columns first
    assert back.layer.tolist() == [0, 1] and (results_dir / "chapter.csv").is_file()


def test_save_results_to_a_folder(tmp_path):
    save_results(_table(), "chapter", folder=tmp_path / "elsewhere")
    assert len(load_results("chapter", folder=tmp_path / "elsewhere")) == 2


def test_save_results_rejects_a_table_without_the_contract_columns(results_dir):
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['value'\]"):
        save_results(_table().drop(columns="value"), "chapter")
    with pytest.raises(ValueError, match="'chapter' is empty"):
        save_results(_table().iloc[:0], "chapter")


# ------------------------------------------------------------------------------ format_table


def test_format_table_shows_no_nan_none_or_negative_zero():
    import numpy as np

    from otlens.results import format_table

    df = pd.DataFrame({"x": [1.23456, -0.00001, np.nan, -0.0, -0.0004999], "n": [1, 2, 3, 1000, 5],
                       "f": [1.0, np.nan, 3.0, 4.0, 5.0], "s": ["a", None, "b", "c", "d"],
                       "big": [1.2e8, 2.0, 0.5, 1.0, 1.5]}, index=list("vwxyz"))
    out = format_table(df)
    assert out.index.equals(df.index) and list(out.columns) == list(df.columns)
    assert out.x.tolist() == ["1.235", "-1.0e-05", "–", "0.000", "-5.0e-04"]  # small stays visible
    assert out.n.tolist() == ["1", "2", "3", "1,000", "5"]
    assert out.f.tolist() == ["1", "–", "3", "4", "5"]  # an integer column with a gap
    assert out.s.tolist() == ["a", "–", "b", "c", "d"]
    assert out.big.tolist()[0] == "1.20e+08"
    text = out.to_string() + out.to_html()
    assert "nan" not in text.lower() and "None" not in text and "-0.000" not in text
    assert format_table(df.x, digits=1).x.tolist()[0] == "1.2"  # a Series is a one-column table


def test_format_table_rejects_bad_input():
    from otlens.results import format_table

    with pytest.raises(TypeError, match="DataFrame"):
        format_table([1, 2])
    with pytest.raises(ValueError, match="digits"):
        format_table(pd.DataFrame({"a": [1.0]}), digits=-1)
