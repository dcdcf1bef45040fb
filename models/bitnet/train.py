"""Train the float baseline and the ternary QAT BitNet side by side; report validation perplexity.

:func:`train_bitnet` is what ``hwsim train bitnet`` calls. Both models start from the same
seed, see the same batches in the same order and use the same optimizer settings, so the
perplexity ratio measures quantization alone. Checkpoints go under the build folder::

    OUT/fp/model.safetensors, meta.json         float baseline
    OUT/ternary/model.safetensors, meta.json    ternary QAT model
    OUT/report.json                             both perplexities, the ratio, the paper's ratios
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hwsim.errors import HwsimError
from hwsim.files import atomic_write_text

from .checkpoint import save_checkpoint
from .config import BitNetConfig
from .data import Corpus, batches, validation_windows
from .model import BitNetModel

__all__ = ["PAPER_PPL", "TrainSettings", "evaluate_ppl", "paper_ratios", "train_bitnet",
           "train_model"]

#: Reported perplexity, FP16 vs BitNet b1.58 (arXiv 2402.17764, Table 1).
PAPER_PPL = {"700M": (12.33, 12.87), "1.3B": (11.25, 11.29), "3B": (10.04, 9.91)}


def paper_ratios() -> dict[str, float]:
    """ternary / FP16 perplexity ratio of each published model size."""
    return {k: round(t / f, 4) for k, (f, t) in PAPER_PPL.items()}


@dataclass(frozen=True)
class TrainSettings:
    """Optimizer and run settings shared by both models.

    ``lr`` peaks after ``warmup`` steps and decays by a cosine to ``lr / 10`` at ``steps``.
    ``eval_windows`` non-overlapping validation windows of ``seq`` bytes are scored.
    """

    steps: int = 800
    batch: int = 16
    seq: int = 128
    lr: float = 2e-3
    warmup: int = 50
    weight_decay: float = 0.01
    seed: int = 0
    eval_windows: int = 256
    threads: int = 1

    def __post_init__(self):
        for k in ("steps", "batch", "seq", "eval_windows", "threads"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise HwsimError(f"training {k} must be a positive integer, not {v!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise HwsimError(f"learning rate must be positive, not {self.lr}")
        if self.warmup < 0 or self.weight_decay < 0:
            raise HwsimError("warmup and weight decay must not be negative")

    def check(self, cfg: BitNetConfig) -> None:
        if self.seq > cfg.max_seq:
            raise HwsimError(f"sequence length {self.seq} exceeds {cfg.name}'s max_seq "
                             f"{cfg.max_seq}")


def _lr_at(step: int, s: TrainSettings) -> float:
    if step < s.warmup:
        return s.lr * (step + 1) / s.warmup
    t = (step - s.warmup) / max(1, s.steps - s.warmup)
    return s.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


@torch.no_grad()
def evaluate_ppl(model: BitNetModel, val: np.ndarray, seq: int, max_windows: int,
                 batch: int = 32) -> float:
    """Validation perplexity: ``exp`` of the mean next-byte cross-entropy over the windows."""
    model.eval()
    win = validation_windows(val, seq, max_windows)
    total, count = 0.0, 0
    for i in range(0, len(win), batch):
        w = torch.from_numpy(win[i:i + batch])
        logits = model(w[:, :-1])
        total += F.cross_entropy(logits.flatten(0, 1), w[:, 1:].flatten(), reduction="sum").item()
        count += w[:, 1:].numel()
    return math.exp(total / count)


def train_model(cfg: BitNetConfig, quantized: bool, corpus: Corpus, s: TrainSettings,
                progress: bool = True) -> tuple[BitNetModel, dict]:
    """Train one model; returns it (in eval mode) and its history."""
    s.check(cfg)
    torch.manual_seed(s.seed)
    model = BitNetModel(cfg, quantized=quantized)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": s.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=s.lr, betas=(0.9, 0.95))
    data = batches(corpus.train, s.batch, s.seq, np.random.default_rng(s.seed))
    losses = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=s.steps, desc=f"{cfg.name} {'ternary' if quantized else 'float'}",
                   unit="step", leave=True)
    t0 = time.perf_counter()
    model.train()
    for step in range(s.steps):
        x, y = next(data)
        for g in opt.param_groups:
            g["lr"] = _lr_at(step, s)
        logits = model(torch.from_numpy(x))
        loss = F.cross_entropy(logits.flatten(0, 1), torch.from_numpy(y).flatten())
        if not torch.isfinite(loss):
            raise HwsimError(f"training diverged at step {step} (loss {loss.item()}); "
                             "lower the learning rate")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if bar is not None:
            bar.update(1)
            if step % 10 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}")
    if bar is not None:
        bar.close()
    train_s = time.perf_counter() - t0
    model.eval()
    ppl = evaluate_ppl(model, corpus.val, s.seq, s.eval_windows)
    return model, {"val_ppl": ppl, "final_train_loss": float(np.mean(losses[-20:])),
                   "train_s": train_s, "steps": s.steps}


def train_bitnet(cfg: BitNetConfig, corpus: Corpus, s: TrainSettings, out: Path,
                 progress: bool = True) -> dict:
    """Train float and ternary models, checkpoint both under ``out``, return the report."""
    s.check(cfg)
    if corpus.train.size < s.seq + 2 or corpus.val.size < s.seq + 1:
        raise HwsimError(f"{corpus.source}: {corpus.train.size} training and {corpus.val.size} "
                         f"validation bytes are too few for windows of {s.seq} bytes")
    torch.set_num_threads(s.threads)
    out = Path(out)
    report = {"config": cfg.name, "settings": asdict(s), "corpus": corpus.describe()}
    for kind, quantized in (("fp", False), ("ternary", True)):
        model, hist = train_model(cfg, quantized, corpus, s, progress)
        save_checkpoint(model, out / kind, {"history": hist, "settings": asdict(s),
                                            "corpus": corpus.describe()})
        report[kind] = hist
    report["fp_ppl"] = report["fp"]["val_ppl"]
    report["ternary_ppl"] = report["ternary"]["val_ppl"]
    report["ppl_ratio"] = report["ternary_ppl"] / report["fp_ppl"]
    report["paper_ppl_ratio"] = paper_ratios()
    atomic_write_text(out / "report.json", json.dumps(report, indent=1))
    return report
