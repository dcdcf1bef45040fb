"""BitNet projections on the golden ternary MVU, and the same projections on its RTL under cocotb.

:class:`GoldenBitLinears` runs a trained ternary :class:`~models.bitnet.model.BitNetModel` with
every projection computed by :func:`hwsim.golden.vitallm.ternary_mvu.ternary_mvu_acc` on integer codes:

1. ``x_q, step = per_token_codes(x)`` — the int8 activation codes of the torch quantizer;
2. ``acc = W_q · x_q`` — exact integer accumulators from the golden kernel (int64);
3. ``y = acc · step · mean|W|`` — the real output, rescaled per token and per matrix.

Contract (tested): the accumulators equal, with ``==``, the integer product of the torch
model's own codes; a projection's torch fake-quant output differs from ``y`` only by float32
summation order (the torch layer sums ``q·step × W_q·scale`` products in float32), bounded per
element by ``in_features · 2⁻²³ · Σ|terms|``. Through a whole model that tiny difference can
move a later activation across a rounding tie, so one int8 code flips there; greedy next-token
choices are compared (``hwsim bench bitnet``) and must agree on ≥ 99 % of positions.

Between projections (RMSNorm, RoPE, softmax attention, the
residual stream, the LM head) this path still computes in float32 as the torch model does:
it is the *integer BitLinear path*, not yet the integer-only model (see ``docs/bitnet.md``).

:func:`rtl_projection_case` turns the captured codes of one projection into a stimulus case of
the ``ternary-mvu`` kernel, so :func:`hwsim.sim.runner.simulate` runs the real activations of
the trained model through the Amaranth RTL on Icarus or Verilator and checks ``==`` golden.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
import torch

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import ternary_mvu as mvu
from quant.brevitas_quantizers import per_token_codes
from quant.qtype import quantize_multiplier

from .model import PROJECTIONS, BitLinear, BitNetModel

__all__ = ["GoldenBitLinears", "ProjectionTrace", "capture_projection", "greedy_agreement",
           "rtl_projection_case"]


@dataclass
class ProjectionTrace:
    """Integer codes seen by one projection: ``X`` (n, in) int8, ``W`` (out, in) ternary,
    ``acc`` (n, out) int64 golden accumulators, ``step`` (n,) activation steps, ``scale``."""

    name: str
    X: np.ndarray
    W: np.ndarray
    acc: np.ndarray
    step: np.ndarray
    scale: float
    extra: dict = field(default_factory=dict)


def _codes(lin: BitLinear) -> tuple[np.ndarray, float]:
    with torch.no_grad():
        qw = lin.quant_weight()
    return qw.int().numpy().astype(np.int64), float(qw.scale.detach()) * float(lin.weight_gain)


def _golden_forward(lin: BitLinear, W: np.ndarray, scale: float, x: torch.Tensor, sink):
    q, step = per_token_codes(x)
    X = q.reshape(-1, q.shape[-1]).numpy().astype(np.int64)
    acc = mvu.ternary_mvu_acc(W, X)                                              # (n, out)
    if sink is not None:
        sink(X, acc, step.reshape(-1).numpy())
    y = torch.from_numpy(acc.astype(np.float64)) * step.reshape(-1, 1).double() * scale
    return y.float().reshape(*x.shape[:-1], W.shape[0])


class GoldenBitLinears(contextlib.AbstractContextManager):
    """Inside ``with GoldenBitLinears(model):`` every BitLinear of ``model`` runs on the golden
    ternary MVU. ``on_projection(name, X, acc, step)`` (optional) sees every call's codes."""

    def __init__(self, model: BitNetModel, on_projection=None):
        if not model.quantized:
            raise HwsimError("the golden ternary path needs the ternary model, not the float one")
        self.model, self.on_projection, self._saved = model, on_projection, []

    def __enter__(self):
        for name, mod in self.model.named_modules():
            if isinstance(mod, BitLinear):
                W, scale = _codes(mod)
                sink = None
                if self.on_projection is not None:
                    def sink(X, acc, step, _n=name):
                        self.on_projection(_n, X, acc, step)
                self._saved.append(mod)
                mod.forward = (lambda x, _m=mod, _W=W, _s=scale, _k=sink:
                               _golden_forward(_m, _W, _s, x, _k))
        return self

    def __exit__(self, *exc):
        for mod in self._saved:
            del mod.forward  # back to the class's forward
        self._saved.clear()
        return False


def capture_projection(model: BitNetModel, tokens: np.ndarray, layer: int = 0,
                       proj: str = "wq") -> ProjectionTrace:
    """Run ``tokens`` (1, T) through the golden path and keep projection ``proj`` of ``layer``."""
    if proj not in PROJECTIONS:
        raise HwsimError(f"unknown projection {proj!r}; one of {', '.join(PROJECTIONS)}")
    if not 0 <= layer < model.config.layers:
        raise HwsimError(f"layer {layer} does not exist ({model.config.layers} layers)")
    target = f"layers.{layer}.{PROJECTIONS[proj]}"
    got = {}

    def keep(name, X, acc, step):
        if name == target:
            got.update(X=X, acc=acc, step=step)

    with torch.no_grad(), GoldenBitLinears(model, keep):
        model.eval()(torch.as_tensor(np.asarray(tokens, dtype=np.int64)).reshape(1, -1))
    W, scale = _codes(model.get_submodule(target))
    return ProjectionTrace(target, got["X"], W, got["acc"], got["step"], scale)


def rtl_projection_case(trace: ProjectionTrace, mult_bits: int = 16, name: str | None = None):
    """A ``ternary-mvu`` stimulus case from a captured projection.

    The RTL requantizes each accumulator to int8 with one per-tensor ``M · 2**-S``; we pick it
    so the largest accumulator of the trace maps to 127 (the kernel's per-tensor contract).
    """
    peak = max(int(np.abs(trace.acc).max()), 1)
    M, S = quantize_multiplier(127.0 / peak, bits=mult_bits)
    return {"name": name or trace.name.replace(".", "_"),
            "arrays": {"W": trace.W, "X": trace.X, "mult": M, "shift": S}}


@torch.no_grad()
def greedy_agreement(model: BitNetModel, windows: np.ndarray) -> dict:
    """Greedy next-token choices of the torch model and of the golden path on ``windows``
    ((n, T) int64): fraction of positions where the argmax agrees, and both logits' peak gap."""
    model.eval()
    tok = torch.as_tensor(windows)
    ref = model(tok)
    with GoldenBitLinears(model):
        gold = model(tok)
    agree = (ref.argmax(-1) == gold.argmax(-1)).double().mean().item()
    diff = (ref - gold).abs()
    return {"positions": int(ref.shape[0] * ref.shape[1]), "greedy_agreement": agree,
            "max_abs_logit_diff": float(diff.max()), "median_abs_logit_diff": float(diff.median())}
