"""QONNX and QCDQ ONNX of a BitNet decoder layer and of the whole model (prefill, fixed length).

``export_bitnet(model, out, seq)`` writes::

    OUT/layer{i}.qonnx.onnx, layer{i}.qcdq.onnx    one decoder layer: hidden (1, T, d) → (1, T, d)
    OUT/model.qonnx.onnx,    model.qcdq.onnx       tokens (1, T) int64 → logits (1, T, vocab)

and checks each against the torch fake-quant model (QCDQ in onnxruntime, QONNX in qonnx's
executor, through :mod:`quant.onnx`) on the inputs it returns. See :mod:`quant.export` for the
node patterns.

The files run in third-party tools as they come:

* Every graph is static (:func:`quant.onnx.make_static`): no ``Constant`` nodes, shapes and
  indices folded, a ``value_info`` with a fixed shape on every tensor. ReLU² is written
  ``Pow(r, 2)``: qonnx's ``cleanup`` (``qonnx.util.cleanup.cleanup_model``) renames only the
  first use of a tensor within a node, so ``Mul(r, r)`` came out reading an undefined tensor.
  ``cleanup_model`` then ``execute_onnx`` on a QONNX file gives torch's output within
  :data:`TIGHT_TOL`; cleanup renames the input to ``global_in`` (feed ``graph.input[0].name``).
* QCDQ weights are ``Clip(codes) → DequantizeLinear(1, 0) → Mul(mean|W|)``: onnxruntime's
  default graph optimizations fuse a weight ``DequantizeLinear`` that feeds a ``MatMul`` into
  ``MatMulNBits``, which quantizes its activation input again per block of 32 (outside the
  export contract at most positions); behind the ``Mul`` nothing fuses, and
  ``InferenceSession(path)`` with default options meets the same contract as with
  optimizations off (:func:`verify_export` measures both).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from hwsim.errors import HwsimError
from hwsim.files import staged_dir
from quant.export import replace_bitlinears
from quant.onnx import (
    FORMATS,
    QONNX_DOMAIN,
    TIGHT_TOL,
    export_tolerance,
    export_torch,
    run_onnxruntime,
    run_qonnx,
)

from .model import BitNetModel

__all__ = [
    "TIGHT_TOL",
    "LayerModule",
    "export_agrees",
    "export_bitnet",
    "run_exported",
    "verify_export",
]


class LayerModule(nn.Module):
    """One decoder layer with its RoPE tables, callable on hidden states alone."""

    def __init__(self, model: BitNetModel, index: int):
        super().__init__()
        self.layer = model.layers[index]
        self.register_buffer("cos", model.rope_cos.clone())
        self.register_buffer("sin", model.rope_sin.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x, self.cos, self.sin)


def run_exported(fmt: str, path_or_model, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """Run an exported model in its executor (QCDQ: onnxruntime, QONNX: qonnx); first output."""
    return (run_onnxruntime if fmt == "qcdq" else run_qonnx)(path_or_model, inputs)[0]


def export_bitnet(model: BitNetModel, out: Path, seq: int = 32, layer: int = 0,
                  tokens: np.ndarray | None = None) -> dict:
    """Export decoder layer ``layer`` and the whole model in both formats into ``out``.

    Returns ``{"files": [...], "tokens": (1, seq) int64, "hidden": (1, seq, d) float32}`` — the
    example inputs the graphs were traced with (the layer's input is the real hidden state of
    ``tokens`` at that layer).
    """
    if not model.quantized:
        raise HwsimError("export needs the ternary (QAT) model, not the float baseline")
    cfg = model.config
    if not 1 <= seq <= cfg.max_seq:
        raise HwsimError(f"export length {seq} must be 1 … {cfg.max_seq}")
    if not 0 <= layer < cfg.layers:
        raise HwsimError(f"layer {layer} does not exist ({cfg.layers} layers)")
    model = model.eval()
    if tokens is None:
        tokens = np.random.default_rng(0).integers(0, cfg.vocab, (1, seq))
    tok = torch.as_tensor(np.asarray(tokens, dtype=np.int64)).reshape(1, seq)
    captured = {}

    def grab(_module, args):
        captured["x"] = args[0].detach().clone()

    hook = model.layers[layer].register_forward_pre_hook(grab)
    with torch.no_grad():
        model(tok)
    hook.remove()
    hidden = captured["x"]
    files = []
    with staged_dir(Path(out)) as stage:
        for fmt in FORMATS:
            exp = replace_bitlinears(model, fmt)
            name = f"layer{layer}.{fmt}.onnx"
            export_torch(LayerModule(exp, layer), (hidden,), stage / name, ["hidden"], ["out"],
                         custom_opsets={QONNX_DOMAIN: 1}, static=True)
            files.append(name)
            name = f"model.{fmt}.onnx"
            export_torch(exp, (tok,), stage / name, ["tokens"], ["logits"],
                         custom_opsets={QONNX_DOMAIN: 1}, static=True)
            files.append(name)
    return {"files": [str(Path(out) / f) for f in files], "tokens": tok.numpy(),
            "hidden": hidden.numpy()}


def export_agrees(row: dict) -> bool:
    """The contract a :func:`verify_export` row must meet.

    QONNX (qonnx's executor runs the same fake-quant float graph): every position within
    :data:`TIGHT_TOL`, argmax identical. QCDQ (onnxruntime's kernels reassociate float sums
    differently, so an activation within float rounding of a rounding threshold can land one
    code away, seen on one of 32 positions of a 2-step model on one machine and on none on
    others): at most one position in 16 outside :data:`TIGHT_TOL`, none by more than 5 % of
    the peak, and the argmax identical everywhere else — both with graph optimizations off and
    under onnxruntime's default session options (the ``ort_default_*`` fields)."""
    n = row["positions"]
    if row["format"] != "qcdq":
        return row["positions_over_tol"] == 0 and row["argmax_agreement"] == 1.0

    def meets(prefix: str) -> bool:
        over = row[f"{prefix}positions_over_tol"]
        return (over <= max(1, n // 16)
                and row[f"{prefix}max_abs_diff"] <= export_tolerance("qcdq", row["torch_peak"])
                and row[f"{prefix}argmax_agreement"] >= 1.0 - over / n)

    # QCDQ: with graph optimizations off and, where measured, under default session options
    return meets("") and ("ort_default_max_abs_diff" not in row or meets("ort_default_"))


def _compare(got: np.ndarray, ref: np.ndarray) -> dict:
    diff = np.abs(got - ref).reshape(-1, ref.shape[-1]).max(-1)  # per token position
    tol = export_tolerance("qonnx", float(np.abs(ref).max()))  # the tight one, both formats
    return {"max_abs_diff": float(diff.max()), "positions_over_tol": int((diff > tol).sum()),
            "argmax_agreement": float((got.argmax(-1) == ref.argmax(-1)).mean())}


def verify_export(model: BitNetModel, exported: dict, layer: int = 0) -> list[dict]:
    """Run every exported graph in its executor and compare with torch on the traced inputs
    (per token position: ``positions_over_tol`` counts those beyond :data:`TIGHT_TOL`). QCDQ
    runs twice in onnxruntime: with graph optimizations off (``max_abs_diff`` …) and with the
    default session options a user's ``InferenceSession(path)`` gets (``ort_default_*``)."""
    model = model.eval()
    hidden = torch.from_numpy(exported["hidden"])
    tokens = torch.from_numpy(exported["tokens"])
    with torch.no_grad():
        want = {"layer": LayerModule(model, layer)(hidden).numpy(), "model": model(tokens).numpy()}
    rows = []
    for path in exported["files"]:
        name = Path(path).name
        part, fmt = name.split(".")[0], name.split(".")[1]
        kind = "model" if part == "model" else "layer"
        inputs = {"tokens": exported["tokens"]} if kind == "model" else {"hidden": exported["hidden"]}
        ref = want[kind]
        row = {"file": name, "format": fmt, "torch_peak": float(np.abs(ref).max()),
               "positions": int(ref.size // ref.shape[-1]),
               **_compare(run_exported(fmt, path, inputs), ref)}
        if fmt == "qcdq":
            got = run_onnxruntime(path, inputs, default_options=True)[0]
            row.update({f"ort_default_{k}": v for k, v in _compare(got, ref).items()})
        rows.append(row)
    return rows

