"""The NSD-layout brain loader, on files the tests write in every supported format."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from otlens.brain import (
    load_brain_data,
    load_brain_subject,
    load_stimuli,
    shared_layers,
    shared_stimuli,
)
from otlens.hot import hot_align


@pytest.fixture
def trials(rng):
    """8 stimuli, ids 10..17, shown in shuffled order with stimulus 12 and 15 repeated."""
    ids = np.array([13, 10, 12, 17, 15, 11, 12, 14, 16, 15])
    v1 = rng.standard_normal((len(ids), 6))
    v2 = rng.standard_normal((len(ids), 4))
    return ids, {"V1": v1, "V2": v2}


def _expected(ids, arr, sid):
    return arr[ids == sid].mean(0)


def _check(subject, ids, rois):
    assert list(subject.stimulus_ids) == sorted(set(ids.tolist()))
    assert set(subject.rois) == set(rois)
    for name, arr in rois.items():
        got = subject.rois[name]
        assert got.shape == (8, arr.shape[1])
        for k, sid in enumerate(subject.stimulus_ids):
            np.testing.assert_allclose(got[k], _expected(ids, arr, sid))


def test_npy_layout(tmp_path, trials):
    ids, rois = trials
    d = tmp_path / "subj01"
    d.mkdir()
    np.save(d / "stimulus_ids.npy", ids)
    for k, v in rois.items():
        np.save(d / f"{k}.npy", v)
    _check(load_brain_subject(d), ids, rois)


def test_npz_and_txt_ids(tmp_path, trials):
    ids, rois = trials
    d = tmp_path / "subj02"
    d.mkdir()
    np.savez(d / "betas.npz", stimulus_ids=ids, **rois)
    _check(load_brain_subject(d), ids, rois)
    d3 = tmp_path / "subj03"
    d3.mkdir()
    np.savez(d3 / "betas.npz", **rois)
    (d3 / "stimulus_ids.txt").write_text("stimulus_id\n" + "\n".join(map(str, ids)) + "\n")
    _check(load_brain_subject(d3), ids, rois)


def test_h5_layout(tmp_path, trials):
    h5py = pytest.importorskip("h5py")
    ids, rois = trials
    d = tmp_path / "subj04"
    d.mkdir()
    with h5py.File(d / "betas.h5", "w") as f:
        f["stimulus_ids"] = ids
        for k, v in rois.items():
            f[k] = v
    _check(load_brain_subject(d), ids, rois)


def test_nifti_masks_and_label_atlas(tmp_path, trials):
    nib = pytest.importorskip("nibabel")
    ids, rois = trials
    shape = (3, 4, 2)
    vol = np.zeros(shape + (len(ids),))
    labels = np.zeros(shape, dtype=np.int16)
    # V1: the first 6 voxels in C order, V2 the next 4
    for name, arr, lab, sl in (("V1", rois["V1"], 1, range(0, 6)), ("V2", rois["V2"], 2, range(6, 10))):
        for col, vox in enumerate(sl):
            idx = np.unravel_index(vox, shape)
            vol[idx] = arr[:, col]
            labels[idx] = lab
    for layout in ("masks", "atlas"):
        d = tmp_path / f"subj_{layout}"
        (d / "rois").mkdir(parents=True) if layout == "masks" else d.mkdir()
        nib.save(nib.Nifti1Image(vol, np.eye(4)), str(d / "betas.nii.gz"))
        np.save(d / "stimulus_ids.npy", ids)
        if layout == "masks":
            for lab, name in ((1, "V1"), (2, "V2")):
                nib.save(nib.Nifti1Image((labels == lab).astype(np.uint8), np.eye(4)), str(d / "rois" / f"{name}.nii.gz"))
            subject = load_brain_subject(d)
        else:
            nib.save(nib.Nifti1Image(labels, np.eye(4)), str(d / "rois.nii.gz"))
            subject = load_brain_subject(d, roi_labels={"V1": [1], "V2": [2]})
        _check(subject, ids, rois)


def test_two_subjects_align_on_shared_stimuli(tmp_path, rng):
    """Subject ↔ subject HOT runs on the stimuli both saw; a subject against itself is diagonal."""
    _subjects(tmp_path, rng, {"subj01": range(100, 160), "subj02": range(110, 160)})
    (tmp_path / "stimuli.csv").write_text("stimulus_id,image\n100,images/100.png\n")
    data = load_brain_data(tmp_path, rois=["V1", "V4"])
    assert list(data) == ["subj01", "subj02"]
    a, b, ids = shared_layers(data["subj01"], data["subj02"])
    assert ids == list(range(110, 160)) and a[0].shape == (50, 7) and b[1].shape == (50, 9)
    al = hot_align(a, a, progress=False)
    np.testing.assert_allclose(al.P, np.eye(2) / 2, atol=1e-12)
    assert hot_align(a, b, progress=False).P.shape == (2, 2)
    stim = load_stimuli(tmp_path)
    assert stim.image[0].endswith("images/100.png") and stim.image[0].startswith("/")
    assert shared_stimuli([1, 2, 3], [3, 2], [2, 3, 9]) == [2, 3]


def test_loader_errors(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match="no subject folder"):
        load_brain_subject(tmp_path / "nope")
    d = tmp_path / "subj01"
    d.mkdir()
    np.save(d / "V1.npy", rng.standard_normal((5, 3)))
    with pytest.raises(FileNotFoundError, match="stimulus_ids"):
        load_brain_subject(d)
    np.save(d / "stimulus_ids.npy", np.arange(4))
    with pytest.raises(ValueError, match="5 trials but there are 4 stimulus ids"):
        load_brain_subject(d)
    bad = rng.standard_normal((4, 3))
    bad[0, 1] = np.nan
    np.save(d / "V1.npy", bad)
    with pytest.raises(ValueError, match="NaN"):
        load_brain_subject(d)
    with pytest.raises(KeyError, match="no ROI"):
        load_brain_subject(d, rois=["V9"])
    with pytest.raises(FileNotFoundError, match="stimuli.csv"):
        load_stimuli(tmp_path)
    pd.DataFrame({"id": [1]}).to_csv(tmp_path / "stimuli.csv", index=False)
    with pytest.raises(ValueError, match="stimulus_id"):
        load_stimuli(tmp_path)


@pytest.mark.slow
def test_image_states_with_a_local_vision_transformer(tmp_path, rng):
    """Any HF vision transformer folder works: a tiny random ViT saved here stands in for a hub id."""
    transformers = pytest.importorskip("transformers")
    from PIL import Image

    from otlens.brain import image_states

    cfg = transformers.ViTConfig(hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32,
                                 image_size=32, patch_size=8)
    transformers.ViTModel(cfg).save_pretrained(tmp_path / "vit", safe_serialization=True)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path / "vit")
    paths = []
    for k in range(5):
        p = tmp_path / f"{k}.png"
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    states = image_states(tmp_path / "vit", paths, batch_size=2, progress=False)
    assert states.shape == (3, 5, 16)
    assert np.isfinite(states.numpy()).all()


def _subjects(root, rng, seen_by):
    latent = {sid: rng.standard_normal(5) for sid in range(100, 160)}
    for name, seen in seen_by.items():
        d = root / name
        d.mkdir()
        sids = np.array(list(seen))
        np.save(d / "stimulus_ids.npy", sids)
        mix = np.stack([latent[s] for s in sids])
        np.save(d / "V1.npy", mix @ rng.standard_normal((5, 7)))
        np.save(d / "V4.npy", np.tanh(mix) @ rng.standard_normal((5, 9)))


def test_brain_study_scores_consecutive_subjects(tmp_path, rng):
    from otlens.hot import brain_study

    _subjects(tmp_path, rng, {"subj01": range(100, 160), "subj02": range(110, 160), "subj03": range(100, 150)})
    df = brain_study(tmp_path, rois=["V1", "V4"], n_splits=2, seed=0, progress=False)
    assert set(df.experiment) == {"hot-brain"}
    assert list(dict.fromkeys(df.model)) == ["subj01>subj02", "subj02>subj03"]  # consecutive pairs only
    assert set(df.layer[df.metric == "score"]) == {0, 1}  # one row per ROI
    assert set(df.seed) == {0, 1} and df.value.notna().all()


def test_brain_study_with_one_subject_or_unknown_stimuli(tmp_path, rng):
    from otlens.hot import brain_study

    _subjects(tmp_path, rng, {"subj01": range(100, 160)})
    assert brain_study(tmp_path, n_splits=1, progress=False) is None  # nothing to align
    (tmp_path / "stimuli.csv").write_text("stimulus_id,text\n999,a sentence\n")
    with pytest.raises(ValueError, match="names none of subj01's stimuli"):
        brain_study(tmp_path, model="minilm-l6", n_splits=1, progress=False)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        brain_study(tmp_path / "missing")
