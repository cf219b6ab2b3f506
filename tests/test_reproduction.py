"""The reproduction table reads its numbers from results tables and decides verdicts from them."""

from __future__ import annotations

import json
import matplotlib
import pandas as pd
import pytest

from otlens import plots
from otlens.reproduction import CLAIMS, VERDICTS, describe_reproduction, reproduction_table

matplotlib.use("Agg")

CH1 = "01_ot_across_depth"
U = [3.0, 1.0, 1.2, 1.1, 3.2]  # a U-shaped profile
ROUGH = [5.0, 7.0, 4.0, 8.0, 5.0]  # higher and erratic
FLAT = [1.0, 1.1, 1.2, 1.3, 1.4]  # no U
SEEDS = (0, 1, 2, 3, 4)


def _rows(model, trained, method, metric, values, *, experiment, seeds=SEEDS):
    return [dict(experiment=experiment, model=model, trained=trained, method=method, layer=k, seed=s,
                 metric=metric, value=v * (1 + 0.01 * ((s * 7 + k * 3) % 5 - 2))) for s in seeds
            for k, v in enumerate(values)]


def _dips(model, trained, metric, method, dip, seeds):
    return [dict(experiment="entropy_dip", model=model, trained=trained, method=method, layer=-1, seed=s,
                 metric=metric, value=dip + (0 if r < 0 else 0.002 * ((r * 7) % 11 - 5) / 5), resample=r)
            for s in seeds for r in range(-1, 100)]


def _chapter1(trained_profile, untrained_profile, trained_dip, untrained_dip, *, seeds=SEEDS):
    rows = []
    for model in ("a", "b"):
        for method, metric in (("published", "ot_cost"), ("corrected", "ot_divergence")):
            rows += _rows(model, True, method, metric, trained_profile, experiment="adjacent_ot", seeds=seeds)
            rows += _rows(model, False, method, metric, untrained_profile, experiment="adjacent_ot", seeds=seeds)
        for method, metric in (("published", "norm_entropy"), ("matrix-renyi", "prompt_entropy"),
                               ("matrix-renyi", "dataset_entropy")):
            rows += _dips(model, True, metric, method, trained_dip, (0,))
            rows += _dips(model, False, metric, method, untrained_dip, seeds)
    return pd.DataFrame(rows)


def _claims(chapter):
    return tuple(c for c in CLAIMS if c.chapter == chapter)


def test_claims_reproduced_when_the_data_show_them(tmp_path):
    _chapter1(U, ROUGH, 0.05, -0.03).to_csv(tmp_path / f"{CH1}.csv", index=False)
    table = reproduction_table(tmp_path, claims=_claims(CH1))
    assert list(table.verdict) == ["reproduced"] * 3
    assert table.n.tolist()[:2] == [5, 5] and table.unit.iloc[0] == "token-sample seeds"
    assert table.effect_text.str.contains(r"\[").all()  # every effect with its interval


def test_claims_not_reproduced_when_the_data_contradict_them(tmp_path):
    # trained rising (no U), untrained lower and smooth, entropy dip only when untrained
    _chapter1(FLAT, [0.5, 0.5, 0.5, 0.5, 0.5], -0.03, 0.05).to_csv(tmp_path / f"{CH1}.csv", index=False)
    table = reproduction_table(tmp_path, claims=_claims(CH1))
    assert list(table.verdict) == ["not reproduced"] * 3


def test_three_seeds_are_underpowered(tmp_path):
    _chapter1(U, ROUGH, 0.05, -0.03, seeds=(0, 1, 2)).to_csv(tmp_path / f"{CH1}.csv", index=False)
    table = reproduction_table(tmp_path, claims=_claims(CH1)[:2])
    assert list(table.verdict) == ["inconclusive (underpowered)"] * 2


def test_published_method_only(tmp_path):
    df = _chapter1(U, ROUGH, 0.05, -0.03)
    corrected = (df.method == "corrected") & df.trained
    df.loc[corrected, "value"] = [FLAT[k] for k in df.loc[corrected, "layer"]]
    df.to_csv(tmp_path / f"{CH1}.csv", index=False)
    verdict = reproduction_table(tmp_path, claims=_claims(CH1)[:1]).verdict.item()
    assert verdict == "reproduced with the published method only"


def test_missing_chapter_says_so(tmp_path):
    table = reproduction_table(tmp_path)
    assert len(table) == len(CLAIMS)
    assert (table.verdict == "data not available here").all()
    assert table.detail.str.contains("has not been run").all()
    assert describe_reproduction(table) == (f"Of the {len(CLAIMS)} claims and suggestions: {len(CLAIMS)} data not "
                                            "available here.")


def test_table_lacking_rows_is_not_available_rather_than_an_error(tmp_path):
    pd.DataFrame(columns=["experiment", "model", "trained", "method", "layer", "seed", "metric", "value"]).to_csv(
        tmp_path / f"{CH1}.csv", index=False)
    table = reproduction_table(tmp_path, claims=_claims(CH1))
    assert (table.verdict == "data not available here").all()


def test_every_claim_has_a_known_study_and_verdict_vocabulary():
    keys = (pytest.importorskip("pathlib").Path(__file__).parents[1] / "book" / "references.bib").read_text()
    for c in CLAIMS:
        assert f"{{{c.study}," in keys, c.study
        assert c.paper and c.claim
    assert set(VERDICTS) == {"reproduced", "reproduced with the published method only", "not reproduced",
                             "inconclusive (underpowered)", "data not available here", "open question"}
    assert any(c.key == "frlc_space" for c in CLAIMS)  # every claim a chapter tests is in the table


def test_bad_results_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        reproduction_table(tmp_path / "nope")


def test_plot_verdicts(tmp_path):
    _chapter1(U, ROUGH, 0.05, -0.03).to_csv(tmp_path / f"{CH1}.csv", index=False)
    fig = plots.plot_verdicts(reproduction_table(tmp_path))
    bars = [p for p in fig.axes[0].patches if p.get_width() > 0]
    assert sum(p.get_width() for p in bars) == len(CLAIMS)
    with pytest.raises(ValueError, match="study"):
        plots.plot_verdicts(pd.DataFrame({"x": [1]}))


@pytest.mark.slow
def test_reproduction_page_runs_and_reads_the_results(tmp_path, results_dir):
    """The page executes through the book's runner and shows what the results folder holds."""
    import json

    from otlens.runner import project_root, run_notebook

    results_dir.mkdir(parents=True, exist_ok=True)
    _chapter1(U, ROUGH, 0.05, -0.03).to_csv(results_dir / f"{CH1}.csv", index=False)
    out = run_notebook(project_root() / "notebooks" / "06_reproduction.md", parameters={},
                       output_dir=tmp_path / "executed", progress=False)
    nb = json.loads(out.read_text())
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    md = "".join("".join(o.get("data", {}).get("application/papermill.record/text/markdown", "")) for o in outputs)
    assert md.count("**reproduced**") == 2 * 3 and "has not been run" in md
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 1


def test_markdown_lists_every_claim_with_its_chapter_link(tmp_path):
    from otlens.reproduction import reproduction_markdown

    _chapter1(U, ROUGH, 0.05, -0.03).to_csv(tmp_path / f"{CH1}.csv", index=False)
    table = reproduction_table(tmp_path)
    text = reproduction_markdown(table)
    summary = [line for line in text.splitlines() if line.startswith("| {cite:t}")]
    assert len(summary) == len(CLAIMS)
    assert text.count("{ref}`ot-across-depth-verdict`") == sum(c.chapter == CH1 for c in CLAIMS)
    assert "GSM8K" in text and "Shakespeare" in text  # the original setting next to ours
    assert text.count("**reproduced**") == 2 * 3  # three chapter-1 claims, in the summary and the details
    with pytest.raises(ValueError, match="lacks the columns"):
        reproduction_markdown(table.drop(columns="verdict"))


def test_hiref_claim_reads_the_benchmark_table_own_then_recorded(tmp_path, monkeypatch):
    """HiRef at 2^20 comes from results/benchmarks.csv, else from the repository's recorded table."""
    from otlens import reproduction

    ch4 = pd.DataFrame([dict(experiment="depth_at_scale", model="m", trained=True, method="hiref", layer=0, seed=0,
                             metric="w2_squared", value=1.0, n_samples=1024)])
    ch4.to_csv(tmp_path / "04_ot_at_scale.csv", index=False)
    claims = _claims("04_ot_at_scale")
    root = tmp_path / "project"
    (root / "benchmarks").mkdir(parents=True)
    monkeypatch.setattr("otlens.runner.project_root", lambda *a: root)

    def hiref_row(**kw):
        table = reproduction_table(tmp_path, claims=claims, **kw)
        return table.set_index("claim_key").loc["hiref_scale"]

    assert hiref_row().verdict == "inconclusive (underpowered)"  # 1,024 points in this run, no benchmarks anywhere
    pd.DataFrame(dict(solver=["hiref"], n=[2**20], time_s=[433.0])).to_csv(root / reproduction.RECORDED_BENCHMARKS,
                                                                            index=False)
    row = hiref_row()
    assert row.verdict == "reproduced" and row.effect_text == "n = 1,048,576"
    assert "recorded benchmarks" in row.effect_label
    assert hiref_row(benchmarks=None).verdict == "inconclusive (underpowered)"
    pd.DataFrame(dict(solver=["hiref"], n=[2**16])).to_csv(tmp_path / "benchmarks.csv", index=False)
    row = hiref_row()  # this run's own benchmarks come first
    assert row.verdict == "inconclusive (underpowered)" and "65,536 (benchmarks (" in row.detail
    with pytest.raises(FileNotFoundError, match="benchmarks"):
        reproduction_table(tmp_path, benchmarks=tmp_path / "none.csv")
    # a partial benchmark run (sinkhorn only) keeps the recorded rows of the benchmarks it did not run
    pd.DataFrame(dict(solver=["hiref"], n=[2**20], benchmark=["scale"])).to_csv(
        root / reproduction.RECORDED_BENCHMARKS, index=False)
    pd.DataFrame(dict(solver=["otlens"], n=[4096], benchmark=["sinkhorn"])).to_csv(tmp_path / "benchmarks.csv",
                                                                                   index=False)
    row = hiref_row()
    assert row.verdict == "reproduced" and "recorded benchmarks" in row.effect_label
    # ... but a benchmark it did run replaces the recorded one
    pd.DataFrame(dict(solver=["hiref"], n=[2**16], benchmark=["scale"])).to_csv(tmp_path / "benchmarks.csv",
                                                                                index=False)
    assert hiref_row().verdict == "inconclusive (underpowered)"


def test_a_quick_benchmark_run_cannot_displace_recorded_target_evidence(tmp_path, monkeypatch):
    """Per benchmark, recorded target- or full-profile rows outrank a quick run; the row cited names file and profile."""
    from otlens import reproduction

    ch4 = pd.DataFrame([dict(experiment="depth_at_scale", model="m", trained=True, method="hiref", layer=0, seed=0,
                             metric="w2_squared", value=1.0, n_samples=1024)])
    ch4.to_csv(tmp_path / "04_ot_at_scale.csv", index=False)
    root = tmp_path / "project"
    (root / "benchmarks").mkdir(parents=True)
    monkeypatch.setattr("otlens.runner.project_root", lambda *a: root)
    pd.DataFrame(dict(solver=["hiref", "otlens"], n=[2**20, 4096], benchmark=["scale", "sinkhorn"],
                      profile=["target", "target"])).to_csv(root / reproduction.RECORDED_BENCHMARKS, index=False)

    def hiref_row():
        table = reproduction_table(tmp_path, claims=_claims("04_ot_at_scale"))
        return table.set_index("claim_key").loc["hiref_scale"]

    quick = dict(solver=["hiref", "otlens"], n=[4096, 1024], benchmark=["scale", "sinkhorn"], profile=["quick", "quick"])
    pd.DataFrame(quick).to_csv(tmp_path / "benchmarks.csv", index=False)
    row = hiref_row()
    assert row.verdict == "reproduced" and "n = 1,048,576" == row.effect_text
    assert "benchmarks/recorded.csv, target profile" in row.detail
    merged = reproduction.load_benchmarks(tmp_path)
    assert sorted(merged.n) == [4096, 2**20]  # the quick run's rows are gone: the recorded ones of both benchmarks stand
    # a run of the same rank replaces the record, and says where it comes from
    pd.DataFrame({**quick, "profile": ["target", "target"], "n": [2**18, 1024]}).to_csv(tmp_path / "benchmarks.csv",
                                                                                   index=False)
    row = hiref_row()
    assert "262,144 (benchmarks (" in row.detail and "benchmarks.csv, target profile" in row.detail
    # a full run of one benchmark outranks nothing it does not include
    pd.DataFrame(dict(solver=["otlens"], n=[4096], benchmark=["sinkhorn"], profile=["full"])).to_csv(
        tmp_path / "benchmarks.csv", index=False)
    assert hiref_row().verdict == "reproduced"


def test_compare_scales_puts_quick_and_paper_verdicts_side_by_side(tmp_path):
    """The paper column reads paper/<stem>/results.csv with the same rules; a verdict that moves is flagged."""
    from otlens.reproduction import SCALE_COLUMNS, compare_scales, scales_markdown

    def ch4(n):
        return pd.DataFrame([dict(experiment="depth_at_scale", model="m", trained=True, method="hiref", layer=0,
                                  seed=0, metric="w2_squared", value=1.0, n_samples=n)])

    quick, root = tmp_path / "results", tmp_path / "project"
    quick.mkdir()
    ch4(1024).to_csv(quick / "04_ot_at_scale.csv", index=False)
    claims = _claims("04_ot_at_scale") + _claims("01_ot_across_depth")
    table = compare_scales(quick, root=root, benchmarks=None, claims=claims)
    assert list(table.columns) == list(SCALE_COLUMNS)
    assert set(table.paper) == {"no paper-scale run recorded"} and not table.changed.any()
    (root / "paper" / "04_ot_at_scale").mkdir(parents=True)
    ch4(2**20).to_csv(root / "paper" / "04_ot_at_scale" / "results.csv", index=False)
    table = compare_scales(quick, root=root, benchmarks=None, claims=claims).set_index("claim_key")
    row = table.loc["hiref_scale"]
    assert row.quick == "inconclusive (underpowered)" and row.paper == "reproduced" and row.changed
    assert row.paper_source == "paper/04_ot_at_scale/results.csv" and row.paper_effect == "n = 1,048,576"
    assert row.paper_setting == "run record missing"
    (root / "paper" / "04_ot_at_scale" / "run.json").write_text(json.dumps(
        dict(profile="paper", parameters=dict(n_texts=4000, seeds=[0, 1]), overrides=["n_texts"])))
    row = compare_scales(quick, root=root, benchmarks=None, claims=claims).set_index("claim_key").loc["hiref_scale"]
    assert row.paper_setting == "profile `paper`, reduced: `n_texts = 4000`"  # a reduced run says so
    assert not table.drop(index="hiref_scale").changed.any()  # chapter 1: no data at either scale
    text = scales_markdown(table.reset_index())
    assert "| **yes** |" in text and "changed with scale for 1 of them" in text
    assert "reduced: `n_texts = 4000`" in scales_markdown(compare_scales(quick, root=root, benchmarks=None,
                                                                         claims=claims))
