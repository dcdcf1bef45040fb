"""The approximate step that lowers a LayerNorm between two 8-bit quantizers to ``IntLayerNorm``."""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import helper
from qonnx.transformation.base import Transformation

from hwsim.compile import dialect
from hwsim.errors import HwsimError
from hwsim.golden.common import layernorm_int as ln_spec

from ._graph import _U32, Passes, _refresh, _remove_dead_nodes, _replace, _scalar, _single_consumer
from .pointwise import _elem_type

_CODE_TYPES = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)


def match_norm(model, node, code_types):
    """The frame of a norm over the last axis between quantizers: ``codes (one of
    code_types) → DequantizeLinear → node → QuantizeLinear (one of code_types) [→ Clip
    (−127 … 127)]``. Returns ``(dq, q, clip, n, epsilon)`` or None; a Clip of another range
    is an error (it would change the output codes the kernel gives)."""
    if len(node.input) < 2 or any(o for o in node.output[1:]):
        return None  # the optional Mean / InvStdDev outputs are read
    dq = model.find_producer(node.input[0])
    if dq is None or dq.op_type != "DequantizeLinear" or len(dq.input) < 3 \
            or _elem_type(model, dq.input[0]) not in code_types:
        return None
    shape = model.get_tensor_shape(node.input[0])
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if not shape or int(attrs.get("axis", -1)) not in (-1, len(shape) - 1):
        return None
    q = _single_consumer(model, node.output[0], ("QuantizeLinear",))
    if q is None or len(q.input) < 3 or _elem_type(model, q.input[2]) not in code_types:
        return None
    clip = _single_consumer(model, q.output[0], ("Clip",))
    if clip is not None:
        lo, hi = (model.get_initializer(i) for i in clip.input[1:3])
        if lo is None or hi is None or (int(lo), int(hi)) != (-127, 127):
            raise HwsimError(f"cannot lower {node.op_type} node {node.name!r}: its output Clip "
                             f"{clip.name!r} is not the narrow int8 range")
    return dq, q, clip, int(shape[-1]), float(attrs.get("epsilon", 1e-5))


class LowerLayerNorm(Passes, Transformation):
    """Approximate: ``codes → DequantizeLinear → LayerNormalization(γ, β, ε, axis=−1) →
    QuantizeLinear [→ Clip]`` on int8/uint8 codes with per-tensor scales and zero points and
    constant ``γ``/``β`` of one value per channel becomes one ``IntLayerNorm`` (kernel
    ``layernorm``): ``γ/s_y`` and ``β/s_y + z_y`` become integer gains and offsets, ``ε`` the
    integer ``eps_code`` (:func:`hwsim.golden.common.layernorm_int.params_for`); a narrowing
    ``Clip`` (−127 … 127) becomes ``out_narrow``. The input's ``DequantizeLinear`` stays where
    it has other readers (a residual skip). A ``LayerNormalization`` on another axis, with
    non-constant or per-element ``γ``/``β``, or whose result is not quantized to 8 bits is left
    as it is (:func:`~hwsim.compile.lower.lower` then names it).

    Bound (:attr:`bounds`, per produced code tensor): ``⌊ε_int + ε_f32⌋ + 1`` LSB. ``ε_int`` =
    :func:`~hwsim.golden.common.layernorm_int.error_bound` is proven: the integer value before
    rounding is that close to the float64 LayerNorm of the same codes. ``ε_f32 = 8·(n + 4)·
    2**-24·(√(n−1)·max|γ/s_y| + max|β/s_y| + 1)`` covers the float32 evaluation of the step
    before (dequantization, mean, variance, normalization, scale, quantizer division) to first
    order for vectors whose spread is not tiny next to their mean; it is an assumed bound,
    not a proof (onnxruntime computes the variance as ``E[x²] − E[x]²``, whose cancellation
    grows without limit as ``σ/|μ|`` shrinks), checked on the verify inputs like every bound.

    The bound assumes the norm's input codes exact: a norm whose input is computed from one
    lowered in the same pass waits for another pass (:class:`~._graph.Passes`).
    """

    exact = False

    def __init__(self):
        super().__init__()
        self.bounds: dict[str, int] = {}

    def _match(self, model, node):
        m = match_norm(model, node, _CODE_TYPES)
        if m is None:
            return None
        dq, q, clip, n, eps = m
        gamma = model.get_initializer(node.input[1])
        beta = model.get_initializer(node.input[2]) if len(node.input) > 2 and node.input[2] \
            else np.zeros(n, np.float32)
        if gamma is None or beta is None:
            return None
        try:
            gamma = np.broadcast_to(np.asarray(gamma, np.float64), (n,))
            beta = np.broadcast_to(np.asarray(beta, np.float64), (n,))
        except ValueError:
            return None
        return dq, q, clip, gamma, beta, eps

    def apply(self, model):
        self.bounds = {}
        self._new_pass()
        for node in [n for n in model.graph.node if n.op_type == "LayerNormalization"]:
            match = self._match(model, node)
            if match is None or self._waits([match[0].input[0]]):
                continue
            self._lower(model, node, *match)
            self._lowered(model, (match[2] or match[1]).output[0])
        _remove_dead_nodes(model)
        return _refresh(model), False

    def _lower(self, model, node, dq, q, clip, gamma, beta, eps) -> None:
        s_x = _scalar(model, dq.input[1], node, "input scale")
        s_y = _scalar(model, q.input[1], node, "output scale")
        z_y = int(_scalar(model, q.input[2], node, "output zero point"))
        in_signed = _elem_type(model, dq.input[0]) == onnx.TensorProto.INT8
        out_signed = _elem_type(model, q.input[2]) == onnx.TensorProto.INT8
        try:
            p = ln_spec.params_for(gamma, beta, eps, s_x, s_y, z_y, in_signed=in_signed,
                                   out_signed=out_signed, out_narrow=clip is not None)
        except HwsimError as e:
            raise HwsimError(f"cannot lower LayerNormalization node {node.name!r}: {e}") from None
        out_codes = (clip or q).output[0]
        new = helper.make_node(
            "IntLayerNorm", [dq.input[0]], [out_codes], domain=dialect.DOMAIN,
            name=f"{node.name}/int", kernel=dialect.IntLayerNorm.KERNEL,
            gamma=list(p.gamma), beta=list(p.beta), frac=p.frac, eps_code=p.eps_code,
            sqrt_frac=p.sqrt_frac, recip_bits=p.recip_bits, gamma_bits=p.gamma_bits,
            beta_bits=p.beta_bits, in_signed=int(p.in_signed), out_signed=int(p.out_signed),
            out_narrow=int(p.out_narrow))
        dq_out = dq.output[0]
        others = [n for n in model.find_consumers(dq_out) or [] if n is not node]
        keep = others or dq_out in {o.name for o in model.graph.output}
        old = [node, q] + ([clip] if clip is not None else [])
        _replace(model, old if keep else [dq, *old], [new])
        g_peak = float(np.max(np.abs(gamma))) / s_y
        b_peak = float(np.max(np.abs(beta))) / s_y
        eps_int = ln_spec.error_bound(p, g_peak)
        eps_f32 = 8 * (p.n + 4) * _U32 * (math.sqrt(max(p.n - 1, 0)) * g_peak + b_peak + 1)
        self.bounds[out_codes] = math.floor(eps_int + eps_f32) + 1
