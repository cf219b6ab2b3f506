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
