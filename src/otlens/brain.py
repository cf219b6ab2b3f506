"""Brain recordings in the Natural Scenes Dataset (NSD) layout, and image-model features for them.

No package ships brain recordings with matched stimuli, so nothing here is run by the book's
default profile; the HOT chapter runs subject ↔ subject and model ↔ brain alignment when its
``brain_dir`` parameter points at data laid out as follows (one folder per subject, one
stimuli × voxels matrix of response amplitudes ("betas") per region of interest):

.. code-block:: text

    brain_dir/
      stimuli.csv                 optional: stimulus_id, and image (path relative to brain_dir) or text
      subj01/
        stimulus_ids.npy          one id per row of the betas (also .txt / .csv, one per line)
        V1.npy  V2.npy  hV4.npy   per-ROI betas [n_trials, n_voxels]           (format "npy")
      subj02/
        betas.npz                 one array per ROI + "stimulus_ids"          (format "npz")
      subj03/
        betas.h5                  one dataset per ROI + "stimulus_ids"        (format "h5", needs h5py)
      subj04/
        betas.nii.gz              4-D volume [x, y, z, n_trials]               (format "nifti", needs nibabel)
        stimulus_ids.npy
        rois/V1.nii.gz ...        one mask per ROI (non-zero voxels are in it)
          or rois.nii.gz + roi_labels={"V1": [1, 2], ...}: an integer label volume

Trials that repeat a stimulus (NSD shows each image three times) are averaged by default.
:func:`shared_layers` gives the regions of a subject as the ``[T, n_voxels]`` "layers" that
:func:`otlens.hot.hot_align` takes, on the stimuli two systems share.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ._validation import check_int

__all__ = [
    "BrainSubject",
    "load_brain_subject",
    "load_brain_data",
    "load_stimuli",
    "shared_stimuli",
    "shared_layers",
    "image_states",
]

_META = {"stimulus_ids"}


@dataclass(frozen=True)
class BrainSubject:
    """One subject's responses: ``rois[name]`` is ``[n_stimuli, n_voxels]``, rows in ``stimulus_ids`` order.

    Parameters
    ----------
    name : str
        The subject's name (its folder).
    stimulus_ids : numpy.ndarray, [n_stimuli]
        The stimuli, in row order.
    rois : mapping of str to numpy.ndarray
        Region name -> responses ``[n_stimuli, n_voxels]``.
    """

    name: str
    stimulus_ids: np.ndarray
    rois: Mapping[str, np.ndarray]

    @property
    def n_stimuli(self) -> int:
        """Number of stimuli the subject saw."""
        return len(self.stimulus_ids)

    def layers(self, stimulus_ids: Sequence[Any] | None = None, rois: Sequence[str] | None = None) -> list[np.ndarray]:
        """The regions (in ``rois`` order) restricted to and ordered by ``stimulus_ids``.

        Parameters
        ----------
        stimulus_ids : sequence, optional
            The stimuli to keep, in the order wanted (default: all, in the subject's order).
        rois : sequence of str, optional
            The regions (default: all).

        Returns
        -------
        list of numpy.ndarray
            One ``[n_stimuli, n_voxels]`` array per region.

        Raises
        ------
        KeyError
            If a region is missing or the subject did not see a stimulus.
        """
        names = list(self.rois) if rois is None else list(rois)
        missing = [r for r in names if r not in self.rois]
        if missing:
            raise KeyError(f"subject {self.name} has no ROI {missing}; it has {sorted(self.rois)}")
        if stimulus_ids is None:
            return [self.rois[r] for r in names]
        where = {s: i for i, s in enumerate(self.stimulus_ids.tolist())}
        absent = [s for s in stimulus_ids if s not in where]
        if absent:
            raise KeyError(f"subject {self.name} did not see {len(absent)} of the stimuli (e.g. {absent[:3]})")
        rows = np.array([where[s] for s in stimulus_ids])
        return [self.rois[r][rows] for r in names]


def _read_ids(folder: Path) -> np.ndarray:
    for name in ("stimulus_ids.npy", "stimulus_ids.txt", "stimulus_ids.csv"):
        p = folder / name
        if p.exists():
            if p.suffix == ".npy":
                return np.load(p, allow_pickle=False)
            lines = [ln.strip() for ln in p.read_text().splitlines() if ln.strip()]
            if lines and lines[0].lower() in ("stimulus_id", "stimulus_ids", "id"):
                lines = lines[1:]
            try:
                return np.array([int(v) for v in lines])
            except ValueError:
                return np.array(lines)
    raise FileNotFoundError(f"{folder}: no stimulus_ids.npy / .txt / .csv (one stimulus id per trial)")


def _read_nifti(folder: Path, roi_labels: Mapping[str, Sequence[int]] | None) -> dict[str, np.ndarray]:
    try:
        import nibabel as nib
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("reading NIfTI betas needs nibabel: pip install 'otlens[brain]'") from exc
    path = next((folder / n for n in ("betas.nii.gz", "betas.nii") if (folder / n).exists()))
    betas = np.asarray(nib.load(str(path)).dataobj)
    if betas.ndim != 4:
        raise ValueError(f"{path}: betas must be a 4-D volume [x, y, z, n_trials]; got shape {betas.shape}")
    masks: dict[str, np.ndarray] = {}
    if (folder / "rois").is_dir():
        for p in sorted((folder / "rois").glob("*.nii*")):
            masks[p.name.split(".nii")[0]] = np.asarray(nib.load(str(p)).dataobj) != 0
    else:
        atlas = next((folder / n for n in ("rois.nii.gz", "rois.nii") if (folder / n).exists()), None)
        if atlas is None or not roi_labels:
            raise FileNotFoundError(f"{folder}: NIfTI betas need rois/<ROI>.nii.gz masks, or rois.nii.gz with `roi_labels`")
        labels = np.asarray(nib.load(str(atlas)).dataobj)
        masks = {name: np.isin(labels, list(vals)) for name, vals in roi_labels.items()}
    out = {}
    for name, mask in masks.items():
        if mask.shape != betas.shape[:3]:
            raise ValueError(f"ROI {name}: mask shape {mask.shape} differs from the betas' volume {betas.shape[:3]}")
        out[name] = betas[mask].T.astype(np.float64)  # [n_trials, n_voxels]
    return out


def _read_rois(folder: Path, roi_labels) -> dict[str, np.ndarray]:
    if (folder / "betas.npz").exists():
        with np.load(folder / "betas.npz", allow_pickle=False) as z:
            return {k: z[k] for k in z.files if k not in _META}
    if (folder / "betas.h5").exists():
        try:
            import h5py
        except ImportError as exc:  # pragma: no cover
            raise ImportError("reading .h5 betas needs h5py: pip install 'otlens[brain]'") from exc
        with h5py.File(folder / "betas.h5", "r") as f:
            return {k: np.asarray(f[k]) for k in f.keys() if k not in _META}
    if any((folder / n).exists() for n in ("betas.nii.gz", "betas.nii")):
        return _read_nifti(folder, roi_labels)
    rois = {p.stem: np.load(p, allow_pickle=False) for p in sorted(folder.glob("*.npy")) if p.stem not in _META}
    if not rois:
        raise FileNotFoundError(f"{folder}: no betas found (per-ROI .npy files, betas.npz, betas.h5 or betas.nii.gz)")
    return rois


def _ids_from_container(folder: Path) -> np.ndarray | None:
    if (folder / "betas.npz").exists():
        with np.load(folder / "betas.npz", allow_pickle=False) as z:
            return z["stimulus_ids"] if "stimulus_ids" in z.files else None
    if (folder / "betas.h5").exists():
        import h5py

        with h5py.File(folder / "betas.h5", "r") as f:
            if "stimulus_ids" in f:
                ids = np.asarray(f["stimulus_ids"])
                return ids.astype(str) if ids.dtype.kind in "SO" else ids
    return None


def load_brain_subject(folder: str | Path, *, rois: Sequence[str] | None = None,
                       roi_labels: Mapping[str, Sequence[int]] | None = None,
                       average_repeats: bool = True) -> BrainSubject:
    """Read one subject's folder (layout in the module docstring).

    Parameters
    ----------
    folder : path
        The subject's folder; its name is the subject's name.
    rois : sequence of str, optional
        Keep these regions, in this order (default: all, sorted by name).
    roi_labels : mapping, optional
        For a NIfTI label volume ``rois.nii.gz``: ROI name → the integer labels it covers.
    average_repeats : bool
        Average the trials of each repeated stimulus (the ids come out sorted).

    Returns
    -------
    BrainSubject
        The subject's regions and stimulus ids.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no subject folder {folder}")
    data = _read_rois(folder, roi_labels)
    ids = _ids_from_container(folder)
    ids = _read_ids(folder) if ids is None else ids
    names = sorted(data) if rois is None else list(rois)
    missing = [r for r in names if r not in data]
    if missing:
        raise KeyError(f"{folder}: no ROI {missing}; found {sorted(data)}")
    out = {}
    for name in names:
        arr = np.asarray(data[name], dtype=np.float64)
        if arr.ndim != 2:
            raise ValueError(f"{folder}: ROI {name} must be [n_trials, n_voxels]; got shape {arr.shape}")
        if arr.shape[0] != len(ids):
            raise ValueError(f"{folder}: ROI {name} has {arr.shape[0]} trials but there are {len(ids)} stimulus ids")
        if not np.isfinite(arr).all():
            bad = ~np.isfinite(arr).all(axis=0)
            raise ValueError(f"{folder}: ROI {name} has NaN/inf in {int(bad.sum())} voxel(s); mask them out first")
        out[name] = arr
    if average_repeats:
        uniq, inverse = np.unique(ids, return_inverse=True)
        if len(uniq) < len(ids):
            counts = np.bincount(inverse, minlength=len(uniq))[:, None]
            for name, arr in out.items():
                sums = np.zeros((len(uniq), arr.shape[1]))
                np.add.at(sums, inverse, arr)
                out[name] = sums / counts
            ids = uniq
    return BrainSubject(name=folder.name, stimulus_ids=np.asarray(ids), rois=out)


def load_brain_data(brain_dir: str | Path, *, subjects: Sequence[str] | None = None, **kw: Any) -> dict[str, BrainSubject]:
    """Every subject folder under ``brain_dir`` (or those named), keyed by name.

    Parameters
    ----------
    brain_dir : str or pathlib.Path
        The folder holding one folder per subject.
    subjects : sequence of str, optional
        The subjects to read (default: every subject folder).
    **kw
        As for :func:`load_brain_subject`.

    Returns
    -------
    dict of str to BrainSubject
        The subjects, by name.

    Raises
    ------
    FileNotFoundError
        If ``brain_dir`` is not a folder or holds no subject.
    """
    root = Path(brain_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"`brain_dir` {root} is not a folder")
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
                   and p.name != "images") if subjects is None else list(subjects)
    if not names:
        raise FileNotFoundError(f"no subject folders in {root}")
    return {n: load_brain_subject(root / n, **kw) for n in names}


def load_stimuli(brain_dir: str | Path) -> pd.DataFrame:
    """``stimuli.csv`` (columns ``stimulus_id`` and ``image`` or ``text``); image paths made absolute.

    Parameters
    ----------
    brain_dir : str or pathlib.Path
        The folder holding ``stimuli.csv``.

    Returns
    -------
    pandas.DataFrame
        One row per stimulus.
    """
    path = Path(brain_dir) / "stimuli.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: model ↔ brain alignment needs the stimuli (image or text per id)")
    df = pd.read_csv(path)
    if "stimulus_id" not in df or not ({"image", "text"} & set(df.columns)):
        raise ValueError(f"{path} needs a `stimulus_id` column and an `image` or `text` column; got {list(df.columns)}")
    if "image" in df:
        df["image"] = [str((path.parent / p).resolve()) for p in df["image"]]
    return df


def shared_stimuli(*id_lists: Sequence[Any]) -> list:
    """Stimulus ids present in every list, sorted.

    Parameters
    ----------
    *id_lists : sequence
        Lists of stimulus ids.

    Returns
    -------
    list
        The ids in all of them, sorted.
    """
    if not id_lists:
        raise ValueError("give at least one list of stimulus ids")
    common = set(np.asarray(id_lists[0]).tolist())
    for ids in id_lists[1:]:
        common &= set(np.asarray(ids).tolist())
    return sorted(common)


def shared_layers(a: BrainSubject, b: BrainSubject, *, rois: Sequence[str] | None = None) -> tuple[list, list, list]:
    """Two subjects' regions on the stimuli both saw.

    Parameters
    ----------
    a, b : BrainSubject
        The two subjects.
    rois : sequence of str, optional
        The regions (default: all of each subject's; both must have them).

    Returns
    -------
    layers_a, layers_b : list of numpy.ndarray
        Each subject's regions ``[n_shared, n_voxels]``, rows in ``stimulus_ids`` order.
    stimulus_ids : list
        The shared stimuli, sorted.
    """
    ids = shared_stimuli(a.stimulus_ids, b.stimulus_ids)
    return a.layers(ids, rois), b.layers(ids, rois), ids


def image_states(model: str | Path, images: Sequence[Any], *, batch_size: int = 16, device: Any = None,
                 progress: bool = True) -> torch.Tensor:
    """Per-image mean of every block's hidden state of a Hugging Face vision transformer.

    Parameters
    ----------
    model : str or pathlib.Path
        A hub id or a local folder (weights in safetensors; no remote code), e.g. a ViT, DINOv2
        or ViT-MAE.
    images : sequence of str, pathlib.Path or PIL.Image.Image
        The images.
    batch_size : int
        Images per forward pass.
    device : str or torch.device, optional
        Device of the model.
    progress : bool
        Show a progress bar.

    Returns
    -------
    torch.Tensor, [n_layers, n_images, d]
        float32, the embedding output excluded.
    """
    from PIL import Image
    from tqdm.auto import tqdm
    from transformers import AutoImageProcessor, AutoModel

    batch_size = check_int(batch_size, "batch_size", minimum=1)
    if len(images) == 0:
        raise ValueError("`images` is empty")
    processor = AutoImageProcessor.from_pretrained(str(model))
    net = AutoModel.from_pretrained(str(model), use_safetensors=True).eval().to(device or "cpu")
    out = []
    for start in tqdm(range(0, len(images), batch_size), desc="image features", unit="batch", disable=not progress):
        batch = [Image.open(im).convert("RGB") if isinstance(im, (str, Path)) else im for im in images[start:start + batch_size]]
        inputs = processor(images=batch, return_tensors="pt").to(net.device)
        with torch.no_grad():
            hs = net(**inputs, output_hidden_states=True).hidden_states
        out.append(torch.stack([h.float().mean(dim=1) for h in hs[1:]]).cpu())
    return torch.cat(out, dim=1)
