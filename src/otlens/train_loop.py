r"""The one training loop of the models trained here (the tiny GPT and the translation model).

Each optimiser step :math:`k = 0, \dots, K-1` draws a batch, computes its loss, clips the
gradients to a global norm and takes an AdamW step at the learning rate

.. math::

    \eta_k = \eta \cdot \begin{cases} \dfrac{k + 1}{W} & k < W \\[1ex]
        f + (1 - f)\,\tfrac12\big(1 + \cos(\pi \min(1, \tfrac{k - W}{\max(1, K - W)}))\big) & k \ge W \end{cases}

(a linear warm-up over :math:`W` steps, then a cosine decay from :math:`\eta` to
:math:`f\eta`, :func:`warmup_cosine`). What differs between the models — how a batch is drawn
and scored, what an evaluation does (a validation loss, a checkpoint) — is passed in as two
functions, so :func:`train_loop` holds the optimisation and nothing else.
"""

from __future__ import annotations

import math
from typing import Callable, Collection

import torch
from tqdm.auto import tqdm

from ._validation import check_int, check_positive

__all__ = ["warmup_cosine", "train_loop"]


def warmup_cosine(step: int, *, warmup: int, steps: int, floor: float = 0.1) -> float:
    """The learning-rate factor at optimiser step ``step`` (0-based): linear warm-up, then cosine decay.

    Parameters
    ----------
    step : int
        Optimiser steps taken so far (0 for the first step).
    warmup : int
        Warm-up steps ``W``: the factor is ``(step + 1) / W`` while ``step < W`` (none when 0).
    steps : int
        Total steps ``K``; the cosine decays from 1 at ``W`` to ``floor`` at ``K``.
    floor : float, default 0.1
        The final factor.

    Returns
    -------
    float
        Multiply the peak learning rate by it.

    Examples
    --------
    >>> [round(warmup_cosine(s, warmup=2, steps=6), 3) for s in range(6)]
    [0.5, 1.0, 1.0, 0.868, 0.55, 0.232]
    """
    if step < warmup:
        return (step + 1) / warmup
    frac = min((step - warmup) / max(1, steps - warmup), 1.0)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * frac))


def train_loop(model: torch.nn.Module, batch_loss: Callable[[int], torch.Tensor], *, steps: int, lr: float,
               warmup: int, weight_decay: float, betas: tuple[float, float] = (0.9, 0.999), grad_clip: float = 1.0,
               decay_vectors: bool = True, floor: float = 0.1,
               evaluate: Callable[[int], float | None] | None = None, eval_steps: Collection[int] = (),
               progress: bool = False, desc: str = "training") -> list[dict]:
    """Train ``model`` for ``steps`` AdamW steps with gradient clipping and a warm-up-cosine schedule.

    Parameters
    ----------
    model : torch.nn.Module
        Trained in place (train mode during the steps, eval mode during evaluations and on return).
    batch_loss : callable
        ``batch_loss(k)`` draws the batch of step ``k`` (0-based) and returns its scalar loss
        (with a graph to differentiate).
    steps : int
        Optimiser steps.
    lr : float
        Peak learning rate.
    warmup : int
        Warm-up steps (see :func:`warmup_cosine`).
    weight_decay : float
        AdamW's decoupled weight decay.
    betas : (float, float), default (0.9, 0.999)
        AdamW's moment decay rates.
    grad_clip : float, default 1.0
        Global gradient-norm clip.
    decay_vectors : bool, default True
        False: only the matrices (parameters of 2 or more dimensions) are decayed, not the biases
        and LayerNorm gains (two parameter groups).
    floor : float, default 0.1
        Final learning rate as a fraction of ``lr``.
    evaluate : callable, optional
        ``evaluate(n)`` after ``n`` steps, for ``n`` in ``eval_steps`` (``0``: before any step),
        run in eval mode without gradients; it returns a validation loss to log, or None.
    eval_steps : collection of int
        When to call ``evaluate``.
    progress : bool, default False
        A tqdm bar over steps with the running training loss and the last validation loss.
    desc : str
        The bar's label.

    Returns
    -------
    list of dict
        The log, in order: ``{"step", "metric", "value"}`` with ``metric="train_loss"`` after every
        step (``step`` counts the steps taken, from 1) and ``"val_loss"`` after every evaluation
        that returned a value; nats per token.

    Raises
    ------
    FloatingPointError
        A training loss that is not finite (the message suggests a lower ``lr``).
    """
    steps = check_int(steps, "steps", minimum=1)
    lr = check_positive(lr, "lr")
    warmup = check_int(warmup, "warmup", minimum=0)
    check_positive(weight_decay, "weight_decay", allow_zero=True)
    check_positive(grad_clip, "grad_clip")
    if decay_vectors:
        groups = model.parameters()
    else:
        groups = [{"params": [p for p in model.parameters() if p.ndim >= 2], "weight_decay": weight_decay},
                  {"params": [p for p in model.parameters() if p.ndim < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=lr, betas=betas, weight_decay=weight_decay)
    eval_steps = set(eval_steps) if evaluate is not None else set()
    log: list[dict] = []
    bar = tqdm(total=steps, desc=desc, unit="step", disable=not progress)
    running = None

    def _evaluate(done: int) -> None:
        model.eval()
        with torch.no_grad():
            value = evaluate(done)
        model.train()
        if value is not None:
            log.append(dict(step=done, metric="val_loss", value=float(value)))
            bar.set_postfix(loss=f"{running:.3f}" if running is not None else "-", val=f"{value:.3f}")

    model.train()
    if 0 in eval_steps:
        _evaluate(0)
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * warmup_cosine(step, warmup=warmup, steps=steps, floor=floor)
        loss = batch_loss(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        value = float(loss.detach())
        if not math.isfinite(value):
            raise FloatingPointError(f"training loss is {value} at step {step + 1}; lower `lr`")
        log.append(dict(step=step + 1, metric="train_loss", value=value))
        running = value if running is None else 0.95 * running + 0.05 * value
        bar.update(1)
        if step + 1 in eval_steps:
            _evaluate(step + 1)
        elif step % 10 == 0:
            bar.set_postfix(loss=f"{running:.3f}")
    bar.close()
    model.eval()
    return log
