"""A trained BitNet decoder layer in the form ``hwsim compile`` builds: static int8 quantizers.

The QAT model quantizes each projection's input per token (absmax, computed at run time) and
keeps everything between projections in float: its export states no integer datapath between
them, so no compiler can build it as written. :func:`static_layer` gives the same layer as a
:class:`hwsim.compile.bitnet_block.BitNetDecoderBlock`: the trained ternary weights (the same
absmean ternary codes and scale), norm gains and RoPE tables, with a per-tensor int8 quantizer
on every activation a compute node reads or writes, its scale calibrated on the real hidden
states of training text at that layer. :func:`static_agreement` measures what the static
quantizers cost against the QAT layer on held-out text; :func:`export_static_layer` writes the
QONNX / QCDQ file that ``hwsim compile`` takes, with the real hidden state as its input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hwsim.compile.bitnet_block import BitNetDecoderBlock
from hwsim.errors import HwsimError

from .model import BitNetModel

__all__ = ["export_static_layer", "hidden_states", "static_agreement", "static_layer"]

_PROJ = {"wq": "attn.wq", "wk": "attn.wk", "wv": "attn.wv", "wo": "attn.wo",
         "w1": "ffn.w1", "w3": "ffn.w3", "w2": "ffn.w2"}


@torch.no_grad()
def hidden_states(model: BitNetModel, index: int, windows: np.ndarray) -> torch.Tensor:
    """The residual stream entering decoder layer ``index`` for token ``windows`` (n, T):
    (n, T, hidden) float32."""
    got = {}
    hook = model.layers[index].register_forward_pre_hook(
        lambda _m, args: got.__setitem__("x", args[0].detach().clone()))
    try:
        model.eval()(torch.as_tensor(np.asarray(windows, dtype=np.int64)))
    finally:
        hook.remove()
    return got["x"]


def static_layer(model: BitNetModel, index: int, calib_windows: np.ndarray) -> BitNetDecoderBlock:
    """Decoder layer ``index`` of the ternary ``model`` on ``T = calib_windows.shape[1]``
    positions with static int8 quantizers, calibrated in training mode on the layer's real
    input for each calibration window, returned in eval mode."""
    cfg = model.config
    if not model.quantized:
        raise HwsimError("the static layer needs the ternary model, not the float baseline")
    if cfg.act != "relu2" or not cfg.subln:
        raise HwsimError(f"the static layer needs SubLN and the relu² FFN (BitNet b1.58 2B4T "
                         f"style); {cfg.name} has act={cfg.act}, subln={cfg.subln}")
    if not 0 <= index < cfg.layers:
        raise HwsimError(f"layer {index} does not exist ({cfg.layers} layers)")
    windows = np.asarray(calib_windows, dtype=np.int64)
    if windows.ndim != 2 or not 1 <= windows.shape[1] <= cfg.max_seq:
        raise HwsimError(f"calibration windows must be (n, T) tokens with T ≤ {cfg.max_seq}, "
                         f"got shape {windows.shape}")
    T = windows.shape[1]
    block = BitNetDecoderBlock(cfg.hidden, cfg.ffn, cfg.heads, cfg.kv_heads, T, cfg.norm_eps,
                               cfg.rope_theta)
    layer = model.layers[index]
    with torch.no_grad():
        for name, path in _PROJ.items():
            src = layer.get_submodule(path)
            # a pre-quantized checkpoint's gain folds into the float weight: absmean ternary
            # codes are scale invariant, the scale takes the gain
            getattr(block, name).weight.copy_(src.weight * src.weight_gain)
        for mine, theirs in (("attn_norm", "attn_norm"), ("attn_sub", "attn.sub_norm"),
                             ("ffn_norm", "ffn_norm"), ("ffn_sub", "ffn.sub_norm")):
            getattr(block, mine).weight.copy_(layer.get_submodule(theirs).weight)
        block.cos.copy_(model.rope_cos[:T])
        block.sin.copy_(model.rope_sin[:T])
    x = hidden_states(model, index, windows)
    block.train()
    with torch.no_grad():
        for row in x:
            block(row)
    return block.eval()


@torch.no_grad()
def static_agreement(model: BitNetModel, index: int, block: BitNetDecoderBlock,
                     windows: np.ndarray) -> dict:
    """The static layer against the QAT layer on the real input of ``windows`` (n, T):
    relative RMS error of the output (‖Δ‖ / ‖QAT‖ over all positions), the largest per-token
    relative error, and the cosine similarity of the layer's update ``out − x``."""
    x = hidden_states(model, index, windows)
    layer = model.layers[index].eval()
    T = x.shape[1]
    want = layer(x, model.rope_cos, model.rope_sin)
    got = torch.stack([block(row) for row in x])
    diff = got - want
    per_token = diff.norm(dim=-1) / want.norm(dim=-1).clamp(min=1e-12)
    du, dw = (got - x).flatten(), (want - x).flatten()
    return {"windows": int(x.shape[0]), "tokens": int(T),
            "rel_rms_error": float(diff.norm() / want.norm().clamp(min=1e-12)),
            "max_token_rel_error": float(per_token.max()),
            "update_cosine": float(du @ dw / (du.norm() * dw.norm()).clamp(min=1e-12))}


def export_static_layer(block: BitNetDecoderBlock, x: np.ndarray, path: Path, fmt: str) -> Path:
    """``block`` exported to ``path`` as ``fmt`` (``qonnx``/``qcdq``), traced at the hidden
    state ``x`` (T, hidden)."""
    from quant.onnx import export_brevitas

    return export_brevitas(block, torch.as_tensor(np.asarray(x, np.float32)), Path(path), fmt)
