"""The approximate step that lowers an RMSNorm between two int8 quantizers to ``IntRmsNorm``."""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import helper
from qonnx.transformation.base import Transformation

from hwsim.compile import dialect
from hwsim.errors import HwsimError

from ._graph import _U32, Passes, _refresh, _remove_dead_nodes, _replace, _scalar
from .layernorm import match_norm

#: bits of the integer gains (signed)
GAMMA_BITS = 16
#: fractional bits of the RMS (the kernel's ``G``)
RMS_FRAC = 12
#: precision of the reciprocal of the RMS
RECIP_BITS = 16


def gains_for(gamma: np.ndarray, s_y: float) -> tuple[list[int], int]:
    """``γ/s_y`` as ``GAMMA_BITS``-bit signed codes with the most fractional bits that hold the
    largest: ``(codes, frac)``."""
    g = np.asarray(gamma, np.float64) / s_y
    peak = max(float(np.max(np.abs(g))), 2.0 ** -30)
    frac = GAMMA_BITS - 1 - math.ceil(math.log2(peak))
    while np.max(np.abs(np.round(g * 2.0 ** frac))) > (1 << (GAMMA_BITS - 1)) - 1:
        frac -= 1
    return [int(v) for v in np.round(g * 2.0 ** frac)], frac


class LowerRmsNorm(Passes, Transformation):
    """Approximate: ``int8 codes → DequantizeLinear → RMSNormalization(γ, ε, axis=−1) →
    QuantizeLinear [→ Clip]`` with per-tensor scales, zero points 0 and a constant ``γ`` of one
    value per channel becomes one ``IntRmsNorm`` (kernel ``rmsnorm``). RMSNorm does not see the
    input scale except through ``ε``: ``eps_code = round(ε/s_x² · 4**G)``; ``γ/s_y`` becomes
    16-bit gains with ``F`` fractional bits (:func:`gains_for`). The frontend fuses the
    decomposed form (``x / Sqrt(mean(x²) + ε) · γ``) into ``RMSNormalization``. A norm on
    another axis, with a per-element or non-constant ``γ``, a nonzero zero point, uint8 codes
    or no int8 quantizer after it is left as it is (the lowering then names it).

    Bound (:attr:`bounds`): ``⌊1.5 + δ_γ + δ_ε + ε_f32⌋`` LSB. The kernel's code is within
    1 LSB of the float64 RMSNorm of the same codes with the integer gains and ``eps_code``
    (proved by the golden's tests); the original's code within ½ LSB of its real value; the
    gain rounding moves the real value by ``δ_γ = √n · 2**-(F+1)`` (``|x_i|/rms ≤ √n``), the
    ``ε`` rounding by ``δ_ε = √n·max|γ/s_y| · n · 4**-G / 4`` (a nonzero row has
    ``mean(x²) ≥ 1/n``); ``ε_f32 = 8·(n + 4)·2**-24·(√n·max|γ/s_y| + 1)`` is the assumed
    first-order float32 term of the step before, checked on the verify inputs.

    The bound assumes the norm's input codes exact: a norm reading one lowered in the same
    pass (BitNet's SubLN after the input RMSNorm) waits for another pass
    (:class:`~._graph.Passes`).
    """

    exact = False

    def __init__(self):
        super().__init__()
        self.bounds: dict[str, int] = {}

    def _match(self, model, node):
        m = match_norm(model, node, (onnx.TensorProto.INT8,))
        if m is None:
            return None
        dq, q, clip, n, eps = m
        gamma = model.get_initializer(node.input[1])
        if gamma is None:
            return None
        try:
            gamma = np.broadcast_to(np.asarray(gamma, np.float64), (n,))
        except ValueError:
            return None
        return dq, q, clip, gamma, eps

    def apply(self, model):
        self.bounds = {}
        self._new_pass()
        for node in [n for n in model.graph.node if n.op_type == "RMSNormalization"]:
            match = self._match(model, node)
            if match is None or self._waits([match[0].input[0]]):
                continue
            self._lower(model, node, *match)
            self._lowered(model, (match[2] or match[1]).output[0])
        _remove_dead_nodes(model)
        return _refresh(model), False

    def _lower(self, model, node, dq, q, clip, gamma, eps) -> None:
        s_x = _scalar(model, dq.input[1], node, "input scale")
        s_y = _scalar(model, q.input[1], node, "output scale")
        for zp, what in ((dq.input[2], "input"), (q.input[2], "output")):
            if _scalar(model, zp, node, f"{what} zero point") != 0:
                raise HwsimError(f"cannot lower RMSNormalization node {node.name!r}: its "
                                 f"{what} zero point is not 0")
        n = len(gamma)
        codes, frac = gains_for(gamma, s_y)
        eps_code = round(eps / (s_x * s_x) * 4.0 ** RMS_FRAC)
        new = helper.make_node(
            "IntRmsNorm", [dq.input[0]], [(clip or q).output[0]], domain=dialect.DOMAIN,
            name=f"{node.name}/int", kernel=dialect.IntRmsNorm.KERNEL, gamma=codes,
            gamma_bits=GAMMA_BITS, gamma_frac=frac, eps_code=eps_code, rms_frac=RMS_FRAC,
            recip_bits=RECIP_BITS, out_narrow=int(clip is not None))
        try:
            dialect.IntRmsNorm(new).params()
            if eps_code >> dialect.IntRmsNorm(new).params().eps_width:
                raise HwsimError(f"eps_code {eps_code} does not fit the kernel's eps port")
        except HwsimError as e:
            raise HwsimError(f"cannot lower RMSNormalization node {node.name!r}: {e}") from None
        dq_out = dq.output[0]
        others = [c for c in model.find_consumers(dq_out) or [] if c is not node]
        keep = others or dq_out in {o.name for o in model.graph.output}
        old = [node, q] + ([clip] if clip is not None else [])
        _replace(model, old if keep else [dq, *old], [new])
        g_peak = float(np.max(np.abs(gamma))) / s_y
        root = math.sqrt(n)
        d_gamma = root * 2.0 ** -(frac + 1)
        d_eps = root * g_peak * n * 4.0 ** -RMS_FRAC / 4
        eps_f32 = 8 * (n + 4) * _U32 * (root * g_peak + 1)
        self.bounds[new.output[0]] = math.floor(1.5 + d_gamma + d_eps + eps_f32)

