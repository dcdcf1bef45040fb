"""BitNet-tiny in ``hwsim sweep bitnet``: perplexity and cost per (weight bits, activation bits).

Quantizers of a sweep point (symmetric, per tensor for weights, per token for activations):

* 2-bit weights are BitNet b1.58's ternary quantizer — scale ``mean|W|``, codes ``{−1, 0, +1}``
  (arXiv 2402.17764); ``b ≥ 3`` bits use absmax with codes ``±(2**(b−1) − 1)``;
* ``a``-bit activations are the per-token absmax quantizer with codes ``±(2**(a−1) − 1)``
  (BitNet's 8-bit one when ``a = 8``);
* straight-through gradients, so ``method="qat"`` fine-tunes the float checkpoint for a few steps
  with the quantizers in place, while ``"ptq"`` only evaluates them.

Only the seven projections of every decoder layer are quantized (as BitNet does); embeddings, the
LM head and the norms stay in float. The cost of a point comes from the estimator
(:mod:`hwsim.estimate`) for ``bitnet-tiny`` on the target, with the weights stored at the point's
width off chip (``dram.weight_bits``; 2 bits for ternary, the I2_S packing). The estimator models
int8 activations only, so the activation width does not change the cost (said in the report).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

WEIGHTS = (2, 3, 4, 5, 6, 8)
ACTS = (4, 5, 6, 8)
TARGETS = ("vitallm", "xczu28dr", "xczu48dr", "xczu49dr")


def _fake_quant(x, scale, qmax: int):
    import torch

    q = torch.clamp(torch.round(x / scale), -qmax, qmax) * scale
    return x + (q - x).detach()  # straight-through estimator


def quant_weight(w, bits: int):
    if bits == 2:  # ternary absmean (BitNet b1.58)
        scale = w.abs().mean().clamp(min=1e-5)
        return _fake_quant(w, scale, 1)
    qmax = (1 << (bits - 1)) - 1
    return _fake_quant(w, w.abs().max().clamp(min=1e-5) / qmax, qmax)


def quant_tokens(x, bits: int):
    qmax = (1 << (bits - 1)) - 1
    scale = x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-5) / qmax
    return _fake_quant(x, scale, qmax)


def _quantize_projections(model, wbits: int, abits: int) -> None:
    import torch
    import torch.nn.functional as F

    from .model import PROJECTIONS

    class _Q(torch.nn.Module):
        def __init__(self, lin):
            super().__init__()
            self.weight = lin.weight

        def forward(self, x):
            return F.linear(quant_tokens(x, abits), quant_weight(self.weight, wbits))

    for layer in model.layers:
        for path in PROJECTIONS.values():
            parent_name, name = path.rsplit(".", 1)
            parent = layer.get_submodule(parent_name)
            setattr(parent, name, _Q(getattr(parent, name)))


def prepare(out: Path, options: dict) -> dict:
    """Train (once, cached in ``OUT/float``) the float BitNet-tiny the points start from."""
    import torch

    from .checkpoint import save_checkpoint
    from .config import get_config
    from .data import stdlib_corpus
    from .train import TrainSettings, train_model

    folder = Path(out) / "float"
    steps = int(options.get("steps", 300))
    if not (folder / "meta.json").exists():
        torch.set_num_threads(1)
        s = TrainSettings(steps=steps, eval_windows=64)
        model, hist = train_model(get_config("tiny"), False, stdlib_corpus(), s, progress=True)
        save_checkpoint(model, folder, {"history": hist, "sweep_prepare_steps": steps})
    return {"checkpoint": str(folder.resolve()), "config": "tiny", "train_steps": steps,
            "eval_windows": 64, "seq": 128, "qat_steps": 30}


def _cost(target: str, wbits: int) -> dict:
    from hwsim.estimate.arch import load_arch
    from hwsim.estimate.estimate import estimate_arch

    arch = load_arch(target)
    arch = arch.with_values({"dram.weight_bits": float(wbits)})
    m = estimate_arch("bitnet-tiny", arch).metrics()
    out = {"energy_per_token_mj": m["energy_per_token_mj"],
           "decode_tokens_per_s": m["decode_tokens_per_s"]}
    for k in ("area_mm2", "luts"):
        if k in m:
            out[k] = m[k]
    return out


def evaluate(point: dict) -> dict:
    """Perplexity of BitNet-tiny quantized at the point, and its estimated cost."""
    import torch
    import torch.nn.functional as F

    from .checkpoint import load_checkpoint
    from .data import batches, stdlib_corpus
    from .train import evaluate_ppl

    torch.set_num_threads(1)
    torch.manual_seed(0)
    ctx = point["context"]
    model, _ = load_checkpoint(Path(ctx["checkpoint"]), quantized=False)
    _quantize_projections(model, int(point["weights"]), int(point["acts"]))
    corpus = stdlib_corpus()
    if point["method"] == "qat":
        opt = torch.optim.AdamW(model.parameters(), lr=5e-4)
        data = batches(corpus.train, 16, ctx["seq"], np.random.default_rng(1))
        model.train()
        for _ in range(ctx["qat_steps"]):
            x, y = next(data)
            loss = F.cross_entropy(model(torch.from_numpy(x)).flatten(0, 1),
                                   torch.from_numpy(y).flatten())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
    ppl = evaluate_ppl(model, corpus.val, ctx["seq"], ctx["eval_windows"])
    if not math.isfinite(ppl):
        raise RuntimeError(f"perplexity is not finite at {point}")
    return {"ppl": ppl, **_cost(point["target"], int(point["weights"]))}
