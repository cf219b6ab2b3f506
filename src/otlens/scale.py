r"""Chapter 4's study: optimal transport at scale, between the adjacent layers of one model.

:func:`hiref_depth_profile` runs the solvers side by side on token clouds of growing size:
Hierarchical Refinement (:func:`otlens.ot.hiref`) at every size, exact OT and Sinkhorn
(:mod:`otlens.ot`) where they fit, all through :func:`otlens.ot.solve`.
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from .depth import sample_tokens, get_method, prepare_transition
from .ot import solve

__all__ = ["hiref_depth_profile"]


def hiref_depth_profile(
    states: Any,
    *,
    sizes: list[int],
    seeds: list[int] = (0,),
    exact_max: int = 2048,
    sinkhorn_max: int = 4096,
    reg: float = 0.01,
    model: str | None = None,
    device: Any = None,
    progress: bool = True,
) -> pd.DataFrame:
    r"""Unregularised adjacent-layer OT profile by HiRef, next to Sinkhorn and exact OT where they run.

    Each transition :math:`\ell \to \ell+1` compares ``n`` tokens sampled (by seed, the same
    tokens in both layers) from the unit-normalised, full-dimension states (the ``corrected``
    preparation of :mod:`otlens.depth`). Methods: ``hiref`` (:math:`W_2^2` of the HiRef
    bijection, every ``n``), ``exact`` (POT, ``n <= exact_max``) and ``sinkhorn``
    (:math:`\langle P, C\rangle` at ``reg`` times the mean cost, ``n <= sinkhorn_max``).

    Parameters
    ----------
    states : Activations or array-like, [n_layers, n_tokens, d_model]
        The token states of every layer.
    sizes : list of int
        Numbers of sampled tokens ``n`` per transition.
    seeds : list of int
        Seeds of the token samples (one row per seed and size).
    exact_max : int
        Largest ``n`` solved by exact OT.
    sinkhorn_max : int
        Largest ``n`` solved by Sinkhorn.
    reg : float
        Sinkhorn's regularisation, relative to the mean cost.
    model : str, optional
        Model name written in the table's ``model`` column.
    device : str or torch.device, optional
        Device of the solvers.
    progress : bool
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        A tidy table (experiment ``depth_at_scale``, metric ``w2_squared``, columns
        ``n_samples``, ``time_s``, ``gap_to_exact`` where exact ran).
    """
    states = states.states if hasattr(states, "states") else torch.as_tensor(states)
    n_tokens = states.shape[1]
    method = get_method("corrected")
    rows = []
    jobs = [(n, s, layer) for n in sizes for s in seeds for layer in range(states.shape[0] - 1)]
    for n, s, layer in tqdm(jobs, desc="transitions", disable=not progress, leave=False):
        if n > n_tokens:
            raise ValueError(f"`sizes` asks for {n} tokens; the states hold {n_tokens}")
        x, y = prepare_transition(states, layer, sample_tokens(n_tokens, n, s), method)
        found = {}
        t = time.perf_counter()
        found["hiref"] = (float(solve(x, y, method="hiref", seed=s, device=device, progress=False, warn=False).cost),
                          time.perf_counter() - t)
        if n <= exact_max:
            t = time.perf_counter()
            found["exact"] = (float(solve(x, y, method="exact", warn=False).cost), time.perf_counter() - t)
        if n <= sinkhorn_max:
            t = time.perf_counter()
            r = solve(x, y, method="sinkhorn", reg=reg, relative_reg=True, tol=1e-4, max_iter=2000, device=device, warn=False)
            found["sinkhorn"] = (float(r.cost), time.perf_counter() - t)
        exact = found.get("exact", (None,))[0]
        for m, (value, secs) in found.items():
            rows.append(dict(experiment="depth_at_scale", model=model, trained=True, method=m, layer=layer, seed=s,
                             metric="w2_squared", value=value, n_samples=n, time_s=secs,
                             gap_to_exact=(value / exact - 1) if exact else float("nan")))
    return pd.DataFrame(rows)
