"""The approximate step that lowers an RMSNorm between two int8 quantizers to ``IntRmsNorm``."""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import helper
from qonnx.transformation.base import Transformation

from hwsim.compile import dialect
from hwsim.errors import HwsimError

from ._graph import _U32, _refresh, _remove_dead_nodes, _replace, _scalar, _single_consumer
from .pointwise import _elem_type

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


class LowerRmsNorm(Transformation):
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
    """

    exact = False
    #: a norm reads the output of another (SubLN after the input norm): each step lowers the
    #: norms with no other norm upstream (their inputs do not change within the step); the
    #: rest waits for :class:`LowerChainedRmsNorm`

    def __init__(self):
        super().__init__()
        self.bounds: dict[str, int] = {}

    def _match(self, model, node):
        if len(node.input) < 2 or any(o for o in node.output[1:]):
            return None
        dq = model.find_producer(node.input[0])
        if dq is None or dq.op_type != "DequantizeLinear" or len(dq.input) < 3 \
                or _elem_type(model, dq.input[0]) != onnx.TensorProto.INT8:
            return None
        shape = model.get_tensor_shape(node.input[0])
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        axis = int(attrs.get("axis", -1))
        if not shape or axis not in (-1, len(shape) - 1):
            return None
        n = int(shape[-1])
        gamma = model.get_initializer(node.input[1])
        if gamma is None:
            return None
        try:
            gamma = np.broadcast_to(np.asarray(gamma, np.float64), (n,))
        except ValueError:
            return None
        q = _single_consumer(model, node.output[0], ("QuantizeLinear",))
        if q is None or len(q.input) < 3 or _elem_type(model, q.input[2]) != onnx.TensorProto.INT8:
            return None
        clip = _single_consumer(model, q.output[0], ("Clip",))
        if clip is not None:
            lo, hi = (model.get_initializer(i) for i in clip.input[1:3])
            if lo is None or hi is None or (int(lo), int(hi)) != (-127, 127):
                raise HwsimError(f"cannot lower RMSNormalization node {node.name!r}: its "
                                 f"output Clip {clip.name!r} is not the narrow int8 range")
        return dq, q, clip, gamma, float(attrs.get("epsilon", 1e-5))

    @staticmethod
    def _first(model, norms: list) -> list:
        """The norms with no other norm of ``norms`` upstream: lowering them cannot change
        another one's input within this step."""
        names = {n.name for n in norms}
        out = []
        for node in norms:
            seen, todo, clean = set(), list(node.input), True
            while todo and clean:
                t = todo.pop()
                if t in seen:
                    continue
                seen.add(t)
                prod = model.find_producer(t)
                if prod is not None:
                    clean = prod.name not in names
                    todo.extend(prod.input)
            if clean:
                out.append(node)
        return out

    def apply(self, model):
        self.bounds = {}
        norms = [n for n in model.graph.node if n.op_type == "RMSNormalization"]
        for node in self._first(model, norms):
            match = self._match(model, node)
            if match is not None:
                self._lower(model, node, *match)
        _remove_dead_nodes(model)
        self._propagate(model)
        return _refresh(model), False

    def _propagate(self, model) -> None:
        """Nothing after the norms is lowered yet at this step's place in :data:`STEPS`."""

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


class LowerChainedRmsNorm(LowerRmsNorm):
    """Approximate: :class:`LowerRmsNorm` once more, after every other step, for the norms
    that read another norm's result (BitNet's SubLN after the input RMSNorm): their inputs
    are then dialect nodes the step does not change, so the bound is :class:`LowerRmsNorm`'s;
    the nodes lowered after them that read a bounded tensor get it propagated as
    :class:`~hwsim.compile.lower.attention.LowerAttention` does (``Requant`` after a matrix
    product: input bound × ``M·2**-S`` × largest column sum of ``|W|``; ``IntEltwise``: each
    operand's bound × its factor; ``LutAct``: the table's largest step over that many codes).
    A third norm in a chain is left (the lowering names it)."""

    def _propagate(self, model) -> None:
        from .attention import LowerAttention
        own = {t: b - 1 for t, b in self.bounds.items()}  # LowerAttention adds the 1 back
        LowerAttention._propagate(self, model, own)
