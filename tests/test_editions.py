"""The two editions: manifests, recorded runs, provenance notes, staging the paper edition from records."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from otlens import editions
from otlens.editions import RECORD_FIELDS, add_provenance, read_record, record_chapter, recorded_chapters, stage_edition
from otlens.runner import _write_run_record, parameters_digest

ROOT = Path(__file__).resolve().parents[1]


def _executed(folder: Path, stem: str, *, profile: str, root: Path) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {stem}"),
                                         nbformat.v4.new_code_cell("x = 1")])
    path = folder / f"{stem}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    _write_run_record(path, profile=profile, overrides={}, seconds=1060.4,
                      parameters={"n_texts": 512, "device": "cpu"}, root=root)
    return path


def test_run_record_holds_the_provenance_and_a_stable_parameters_digest(tmp_path):
    path = _executed(tmp_path, "01_x", profile="paper", root=ROOT)
    m = read_record(path)
    assert set(RECORD_FIELDS) <= set(m)
    assert m["profile"] == "paper" and m["wall_time_s"] == 1060.4 and m["parameters"]["n_texts"] == 512
    assert m["parameters_sha256"] == parameters_digest({"device": "cpu", "n_texts": 512})  # order does not matter
    assert m["parameters_sha256"] != parameters_digest({"device": "cpu", "n_texts": 511})
    assert m["commit"] is None or len(m["commit"]) == 40
    assert "torch" in m["versions"] and m["device"].startswith("cpu")
    (tmp_path / "old.ipynb").write_text("{}")
    (tmp_path / "old.run.json").write_text('{"wall_time_s": 3}')
    with pytest.raises(ValueError, match="lacks"):
        read_record(tmp_path / "old.ipynb")
    with pytest.raises(FileNotFoundError, match="otlens run"):
        read_record(tmp_path / "none.ipynb")


def test_provenance_note_is_inserted_once_after_the_title(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell("1")])
    m = read_record(_executed(Path(tmp_path), "01_x", profile="paper", root=ROOT))
    for _ in range(2):
        add_provenance(nb, m, edition="paper")
    notes = [c for c in nb.cells if "otlens-provenance" in c.metadata.get("tags", [])]
    assert len(notes) == 1 and nb.cells[1] is notes[0]
    text = notes[0].source
    assert "Paper edition" in text and "`paper`" in text and "17 min 40 s" in text and m["parameters_sha256"][:12] in text
    assert "-p" not in text  # no command-line overrides in this run
    # a value set over the profile's on the command line is named on the page, with its value
    m2 = dict(m, overrides=["n_texts"])
    assert "`n_texts = 512`" in editions.provenance_markdown(m2, edition="paper")


def test_record_then_stage_the_paper_edition(tmp_path):
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    for stem in ("01_a", "02_b"):
        (root / "notebooks" / f"{stem}.md").write_text(f"# {stem}\n")
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n"
                                   "  - file: book/executed/01_a\n  - file: book/executed/02_b\n")
    (root / "_config.yml").write_text("title: t\n")
    (root / "book").mkdir()
    (root / "book" / "intro.md").write_text("# Intro\n")
    quick = root / "book" / "executed"
    for stem in ("01_a", "02_b"):
        _executed(quick, stem, profile="quick", root=root)
    paper_run = _executed(tmp_path / "paper-run", "01_a", profile="paper", root=root)
    pd.DataFrame({"value": [1.0]}).to_csv(tmp_path / "01_a.csv", index=False)
    with pytest.raises(ValueError, match="quick profile"):
        record_chapter(quick / "01_a.ipynb", tmp_path / "01_a.csv", root=root)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        record_chapter(paper_run, tmp_path / "none.csv", root=root)
    dest = record_chapter(paper_run, tmp_path / "01_a.csv", root=root)
    assert sorted(p.name for p in dest.iterdir()) == ["chapter.ipynb", "results.csv.gz", "run.json"]
    pd.testing.assert_frame_equal(pd.read_csv(dest / "results.csv.gz"), pd.read_csv(tmp_path / "01_a.csv"))
    first = (dest / "results.csv.gz").read_bytes()
    record_chapter(paper_run, tmp_path / "01_a.csv", root=root)
    assert (dest / "results.csv.gz").read_bytes() == first  # no time stamp: recording again changes nothing
    assert list(recorded_chapters(root)) == ["01_a"]

    staged = stage_edition("paper", root, out=tmp_path / "staged")
    notes = {}
    for stem in ("01_a", "02_b"):
        nb = nbformat.read(staged / "book" / "executed" / f"{stem}.ipynb", as_version=4)
        (note,) = [c.source for c in nb.cells if "otlens-provenance" in c.metadata.get("tags", [])]
        notes[stem] = note
    assert "Paper edition: profile `paper`" in notes["01_a"] and "17 min 40 s" in notes["01_a"]
    assert (staged / "book" / "executed" / "01_a.run.json").is_file()  # the {chapter-time} role reads it
    assert "Quick edition: profile `quick`" in notes["02_b"] and "No paper-scale run" in notes["02_b"]
    staged_quick = stage_edition("quick", root, out=tmp_path / "staged-quick")
    nb = nbformat.read(staged_quick / "book" / "executed" / "01_a.ipynb", as_version=4)
    assert any("Quick edition" in c.source for c in nb.cells)
    with pytest.raises(ValueError, match="edition"):
        stage_edition("draft", root)


def test_the_recorded_runs_fit_their_budget_and_carry_manifests():
    recorded = recorded_chapters(ROOT)
    assert editions.recorded_size_mb(ROOT) <= editions.SIZE_BUDGET_MB
    for stem, manifest in recorded.items():
        assert manifest["notebook"] == stem and manifest["profile"] != "quick"
        assert editions.recorded_results(ROOT, stem) == ROOT / editions.RECORDED_DIR / stem / "results.csv.gz"
        json.dumps(manifest)  # plain JSON


def test_a_recorded_run_below_the_paper_profile_says_by_how_much():
    """Every value a recorded run changed from params/paper.yml is named on its page; none is invented."""
    from otlens.runner import load_params

    for stem, manifest in recorded_chapters(ROOT).items():
        paper = load_params(ROOT / "notebooks" / f"{stem}.md", profile="paper")
        diff = editions.paper_differences(manifest, ROOT)
        assert diff == {k: (v, paper[k]) for k, v in manifest["parameters"].items() if v != paper[k]}
        note = editions.reduction_note(manifest, ROOT)
        assert (note is None) == (not diff)
        for key, (ours, theirs) in diff.items():
            assert f"`{key} = {ours}` (paper: `{theirs}`)" in note
    reduced = dict(recorded_chapters(ROOT)["01_ot_across_depth"])
    reduced["parameters"] = {**reduced["parameters"], "n_texts": 64}
    assert "`n_texts = 64` (paper: `512`)" in editions.reduction_note(reduced, ROOT)
