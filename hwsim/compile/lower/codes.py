"""Exact steps: quantizers become integer code tensors (activations) and initializers (weights)."""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.transformation.base import Transformation

from hwsim.errors import HwsimError

from ._graph import (
    _QUANT_DOMAINS,
    _code_range,
    _const,
    _is_quant,
    _quant_params,
    _refresh,
    _replace,
    _scalar,
    _single_consumer,
)


def _is_bipolar(node) -> bool:
    return node.op_type == "BipolarQuant" and node.domain in _QUANT_DOMAINS


def _bipolar_params(model, node) -> tuple[np.float32, int, bool, bool, int]:
    """A ``BipolarQuant``'s ``(scale, zero, signed, narrow, width)`` as a 2-bit narrow
    quantizer (codes ±1 of a ternary format); the scale per tensor."""
    return np.float32(_scalar(model, node.input[1], node, "scale")), 0, True, True, 2


class QuantActivationsToCodes(Transformation):
    """Exact: ``Quant(x)`` on an activation → ``QuantizeLinear [→ Clip] → DequantizeLinear``.

    ``QuantizeLinear`` computes ``round_half_even(x / s)`` saturated to int8/uint8 as the
    ``Quant`` node does; a ``Clip`` narrows the range where the quantizer is narrow. The codes
    tensor is named ``<Quant output>_codes``.
    """

    exact = True

    def apply(self, model):
        for node in [n for n in model.graph.node if _is_quant(n)]:
            if model.get_initializer(node.input[0]) is not None:
                continue  # a weight: WeightQuantToCodes
            scale, zero, signed, narrow, width = _quant_params(model, node)
            if width != 8:
                raise HwsimError(f"Quant node {node.name!r}: activations of {width} bits; "
                                 "only 8-bit activation quantizers are lowered")
            out = node.output[0]
            np_type = np.int8 if signed else np.uint8
            s = _const(model, f"{out}_scale", np.array(scale, np.float32))
            z = _const(model, f"{out}_zero", np.array(zero, np_type))
            codes = f"{out}_codes"
            lo, hi = _code_range(width, signed, narrow)
            full = _code_range(width, signed, False)
            new = []
            if (lo, hi) == full:
                new.append(helper.make_node("QuantizeLinear", [node.input[0], s, z], [codes],
                                            name=f"{node.name}/quantize"))
            else:
                new += [helper.make_node("QuantizeLinear", [node.input[0], s, z],
                                         [f"{codes}_full"], name=f"{node.name}/quantize"),
                        helper.make_node("Clip", [f"{codes}_full",
                                                  _const(model, f"{out}_lo", np.array(lo, np_type)),
                                                  _const(model, f"{out}_hi", np.array(hi, np_type))],
                                         [codes], name=f"{node.name}/narrow")]
            # own copies of scale and zero point: qonnx's cleanup renames shared initializers
            s_out = _const(model, f"{out}_dq_scale", np.array(scale, np.float32))
            z_out = _const(model, f"{out}_dq_zero", np.array(zero, np_type))
            new.append(helper.make_node("DequantizeLinear", [codes, s_out, z_out], [out],
                                        name=f"{node.name}/dequantize"))
            _replace(model, [node], new)
        return _refresh(model), False


class WeightQuantToCodes(Transformation):
    """Exact: ``Quant(W)`` or ``BipolarQuant(W)`` on a weight initializer [→ ``Transpose``] →
    int8 codes ``(in, out)``
    (a convolution's 4-D ``(out, in/group, k, k)`` as they are)
    ``→ DequantizeLinear``; the codes are ``round_half_even(W / s)`` clipped as ``Quant``
    computes them, in float32. A per-channel scale (one per row or column of ``W``, as
    Brevitas' ``Int8WeightPerChannelFloat`` writes) becomes the ``DequantizeLinear``'s 1-D
    scale with its ``axis``. A ``BipolarQuant`` (binary weights, ``±1 · s``; ``W ≥ 0`` → +1 as
    qonnx computes it) gives codes in ``{−1, +1}`` typed ``INT2``: a subset of ternary, so
    the linear step may map it onto ``ternary-mvu``. A ``Quant`` of a 1-D constant (a bias
    quantizer such as Brevitas' ``Int32Bias``) folds into the constant it computes, which the
    linear step then takes as a float bias (in accumulator units: exact for ``Int32Bias``,
    whose scale is ``s_a · s_w``)."""

    exact = True

    def apply(self, model):
        for node in [n for n in model.graph.node if _is_quant(n) or _is_bipolar(n)]:
            w = model.get_initializer(node.input[0])
            if w is None:
                if _is_bipolar(node):
                    raise HwsimError(f"BipolarQuant node {node.name!r} quantizes an activation;"
                                     " 1-bit activations are not lowered (binary weights are)")
                continue
            if not _is_bipolar(node) and np.ndim(w) == 1:
                _fold_bias_quant(model, node, np.asarray(w))
                continue
            if _is_bipolar(node):
                scale, zero, signed, narrow, width = _bipolar_params(model, node)
            else:
                scale, zero, signed, narrow, width = _quant_params(model, node,
                                                                   per_channel=True)
            axis = None
            if scale.ndim:
                along = [d for d in range(scale.ndim) if scale.shape[d] != 1]
                if scale.ndim != w.ndim or len(along) != 1 \
                        or scale.shape[along[0]] != w.shape[along[0]]:
                    raise HwsimError(f"Quant node {node.name!r}: a weight scale of shape "
                                     f"{scale.shape} for weights {w.shape}; only per-tensor "
                                     "and per-channel (one axis) scales are lowered")
                axis = along[0]
            if width > 8 or not signed or zero or w.ndim not in (2, 3, 4):
                raise HwsimError(f"Quant node {node.name!r}: weights must be 2-D (linear), "
                                 f"3-D or 4-D (convolution) signed codes "
                                 f"of at most 8 bits with zero point 0 (got {width} bits, "
                                 f"zero point {zero}, shape {w.shape})")
            lo, hi = _code_range(width, signed, narrow)
            if _is_bipolar(node):
                codes = np.where(w >= 0, 1, -1).astype(np.int8)
            else:
                codes = np.clip(np.round(w.astype(np.float32) / scale), lo, hi).astype(np.int8)
            old, out = [node], node.output[0]
            transpose = _single_consumer(model, out, ("Transpose",))
            if transpose is not None:
                codes, out = codes.T, transpose.output[0]
                old.append(transpose)
                axis = None if axis is None else 1 - axis
            name = f"{node.input[0]}_codes"
            _const(model, name, np.ascontiguousarray(codes))
            model.set_tensor_datatype(name, DataType[f"INT{width}"])  # INT2: ternary
            s = _const(model, f"{node.input[0]}_scale", np.array(scale, np.float32).ravel()
                       if axis is not None else np.array(scale, np.float32))
            extra = {} if axis is None else {"axis": axis}
            _replace(model, old, [helper.make_node(
                "DequantizeLinear", [name, s], [out], name=f"{node.name}/dequantize", **extra)])
        return _refresh(model), False


def _fold_bias_quant(model, node, w: np.ndarray) -> None:
    """``Quant`` of a 1-D constant → the float32 constant it computes (``(clip(round(w/s +
    z)) − z) · s``, half to even, in float64 before the one float32 rounding)."""
    scale, zero, signed, narrow, width = _quant_params(model, node, per_channel=True)
    if width > 32:
        raise HwsimError(f"Quant node {node.name!r}: a {width}-bit bias is wider than the "
                         f"32-bit accumulators")
    lo, hi = _code_range(width, signed, narrow)
    s = np.asarray(scale, np.float64)
    codes = np.clip(np.round(w.astype(np.float64) / s + zero), lo, hi)
    name = f"{node.input[0]}_folded"
    _const(model, name, ((codes - zero) * s).astype(np.float32))
    for reader in model.find_consumers(node.output[0]) or []:
        for i, t in enumerate(reader.input):
            if t == node.output[0]:
                reader.input[i] = name
    model.graph.node.remove(node)

