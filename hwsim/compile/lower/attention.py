"""The approximate step that lowers softmax attention to ``IntAttention`` (kernel
``attention-head``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from onnx import helper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from hwsim.compile import dialect
from hwsim.errors import HwsimError
from hwsim.golden.common import softmax_int as sm
from hwsim.golden.common.eltwise import real_factors as eltwise_real_factors
from hwsim.golden.common.int8_matmul import fold_scale

from ._graph import (
    _U32,
    Passes,
    _refresh,
    _remove_dead_nodes,
    _replace,
    _scalar,
    _single_consumer,
    run_moves,
)

#: nodes that only move data between the code tensors and the attention's matrix products
_MOVES = ("Reshape", "Transpose", "Identity")
#: on the k and v paths also the ``kv_repeat`` pattern (``Unsqueeze → Tile → Reshape``) of
#: grouped-query attention (``repeat_interleave`` of the kv heads)
_KV_MOVES = (*_MOVES, "Unsqueeze", "Tile")
#: a mask value at or below this is "masked" (exports write −inf, −1e4 or the float minimum)
_MASKED = -1e4


def _tokens(shape) -> int | None:
    """``T`` of codes ``(…, T, D)`` holding one sequence: every axis before ``D`` but the
    token axis is 1 (``(1, T, D)``, or ``(T, 1, D)`` sequence first); else ``None``."""
    lead = [int(n) for n in shape[:-1] if n != 1]
    return None if len(lead) > 1 else (lead or [1])[0]


@dataclass
class _Attention:
    """One matched attention core."""

    nodes: list
    q: object          # DequantizeLinear of the q / k / v codes
    k: object
    v: object
    heads: int
    scale: float       # the constant factor of the scores
    causal: bool
    p_q: object        # the probabilities' QuantizeLinear (None: float probabilities)
    out_q: object      # the output's QuantizeLinear
    scores: str        # the Softmax input (calibration)
    L: int             # keys per row
    kv_heads: int = 0  # grouped-query attention: the k / v heads (0: as many as q)


class LowerAttention(Passes, Transformation):
    """Approximate: softmax attention between quantizers becomes one ``IntAttention``.

    Pattern (the front end's ``softmax_attention`` annotation, after the earlier steps)::

        DequantizeLinear(q | k | v codes (…, T, D)) → [Reshape / Transpose: head split]
        MatMul(q, kᵀ) → [Mul | Div by a scalar] [→ Add mask | Where mask] → Softmax(last axis)
        → QuantizeLinear → DequantizeLinear → MatMul(·, v) → [Transpose / Reshape: merge]
        → QuantizeLinear (int8, zero point 0)

    The head split and merge must only move data: the step runs them on an index array and
    requires head ``h`` to own features ``[h·d, (h+1)·d)`` of each token (the usual
    ``reshape(T, H, d).transpose``); the mask must be none or causal (an additive 0 / −inf or
    large negative matrix, or ``Where`` with a constant condition either way round: the
    ``masked_fill(future, -inf)`` export). On the k and v paths the ``kv_repeat`` pattern
    (``Unsqueeze → Tile → Reshape``, what ``repeat_interleave(rep, dim=1)`` on the kv heads
    exports) may repeat ``KV`` heads of ``(…, T, KV·d)`` codes for ``H`` query heads: head
    ``h`` must read kv head ``h // (H/KV)``, and the op reads the un-repeated codes with
    ``kv_heads = KV``. q, k, v codes are int8
    with zero point 0. The scores' constant folds with ``s_q·s_k`` into ``score_mult ·
    2**-score_shift`` (16-bit ``M``) onto int8 score codes with ``score_frac`` fractional bits,
    the largest that holds the largest score of the calibration inputs (:meth:`calibrate`,
    the verify inputs of :func:`~hwsim.compile.lower.lower`; 4 without); the probabilities are
    the kernel's uint8 codes (``prob_frac`` = ``f`` for a ``2**-f`` probability scale, else 8);
    ``out_mult · 2**-out_shift ≈ 2**-prob_frac · s_v / (127 · s_y)`` rescales the kernel's
    absmax output ``o · amax`` to the output quantizer.

    Bound (output LSBs, ``floor(ε) + 1``; ``g = s_v/s_y``, ``L`` keys, ``β`` =
    :func:`~hwsim.golden.common.softmax_int.max_abs_error_bound`), proven for inputs whose
    scores stay inside the score format (the calibration inputs do by construction)::

        ε = 128·g·[L·β + (e^{2η} − 1) + L·(s_P/2 + c_P)]     probabilities vs the file's
          + (½ + 127·2**-(RB−1))·(128/127)·(1 + L·β)·g         absmax codes rescaled
          + 127·amax_max·|out_mult·2**-out_shift − m|          the folded output factor
          + 16·2**-24·128·g·(L + 2)                             float32 of the original

    ``η`` = half a score LSB + the folded score factor's error at the largest ``|q·k|`` + the
    original's float32 rounding of the scores: each score moves by ≤ η, so each float
    probability by a factor within ``e^{±2η}`` (their sum moves by ≤ ``e^{2η} − 1``);
    ``s_P/2 + c_P`` is the file's probability quantizer's rounding and clipping. A node this
    step changes only through its inputs (``IntMatMul → Requant``, ``IntEltwise``, ``LutAct``
    reading a bounded tensor) gets the bound propagated.
    """

    exact = False

    def __init__(self):
        super().__init__()
        self.bounds: dict[str, int] = {}
        self._peaks: dict[str, float] = {}

    def calibrate(self, contexts: list[dict]) -> None:
        """Record the largest unmasked ``|score|`` of each Softmax input in ``contexts``
        (full execution contexts of the graph before this step)."""
        self._peaks = {}
        for ctx in contexts:
            for name, value in ctx.items():
                a = np.asarray(value)
                if a.dtype.kind == "f" and a.size:
                    ok = np.isfinite(a) & (a > _MASKED)
                    peak = float(np.max(np.abs(a[ok]), initial=0.0))
                    self._peaks[name] = max(self._peaks.get(name, 0.0), peak)

    # --------------------------------------------------------------------------------------
    def _chain(self, model, tensor: str, node, kinds=_MOVES):
        """The data-movement nodes from a DequantizeLinear to ``tensor``: (dq, [nodes])."""
        moves = []
        prod = model.find_producer(tensor)
        while prod is not None and prod.op_type in kinds:
            moves.insert(0, prod)
            prod = model.find_producer(prod.input[0])
        if prod is None or prod.op_type != "DequantizeLinear":
            raise HwsimError(f"cannot lower attention at {node.name!r}: an operand is not "
                             "quantized codes moved by Reshape/Transpose")
        return prod, moves

    @staticmethod
    def _run_moves(model, moves, index: np.ndarray) -> np.ndarray:
        return run_moves(model, moves, index)

    def _layout(self, model, dq, moves, node, what: str, T: int, D: int, heads: int,
                transposed: bool, rep: int = 1) -> None:
        """Check that ``moves`` map codes (…, T, D) to heads (…, H, T, d) (``transposed``:
        (…, H, d, T)) with head ``h`` on features ``[h·d, (h+1)·d)``; ``rep`` > 1: ``heads``
        kv heads repeated ``rep`` times each (head ``h`` reads kv head ``h // rep``)."""
        shape = model.get_tensor_shape(dq.input[0])
        index = self._run_moves(model, moves, np.arange(math.prod(shape)).reshape(shape))
        d = D // heads
        want = np.arange(T * D).reshape(T, heads, d).transpose(1, 0, 2)   # (H, T, d)
        want = np.repeat(want, rep, axis=0)
        if transposed:
            want = want.transpose(0, 2, 1)
        got = index.reshape(-1, *index.shape[-2:]) if index.ndim >= 2 else index
        if got.shape != want.shape or not np.array_equal(got, want):
            raise HwsimError(f"cannot lower attention at {node.name!r}: the {what} head split "
                             "is not (T, H·d) → (H, T, d) with head h on features h·d …")

    def _match(self, model, mm1) -> _Attention | None:
        def fail(why):
            raise HwsimError(f"cannot lower attention at {mm1.name!r}: {why}")

        nodes, tail, scale, mask = [mm1], mm1.output[0], 1.0, None
        while True:
            nxt = _single_consumer(model, tail, ("Mul", "Div", "Add", "Where", "Softmax"))
            if nxt is None:
                return None
            if nxt.op_type == "Softmax":
                break
            if nxt.op_type in ("Mul", "Div"):
                other = [i for i in nxt.input if i != tail]
                c = model.get_initializer(other[0]) if len(other) == 1 else None
                if c is None or np.asarray(c).size != 1 or (nxt.op_type == "Div"
                                                            and nxt.input[0] != tail):
                    fail(f"{nxt.name!r} is not a scaling by a constant scalar")
                c = float(np.asarray(c).reshape(()))
                scale *= 1.0 / c if nxt.op_type == "Div" else c
            elif nxt.op_type == "Add":
                other = [i for i in nxt.input if i != tail]
                c = model.get_initializer(other[0]) if len(other) == 1 else None
                if c is None:
                    fail(f"{nxt.name!r} adds a non-constant")
                mask = np.asarray(c) > _MASKED
                if np.any(np.asarray(c)[mask] != 0):
                    fail(f"{nxt.name!r} adds values other than 0 and a mask")
            else:  # Where(keep, scores, fill) or Where(masked, fill, scores) (masked_fill)
                at = 1 if nxt.input[1] == tail else 2
                cond, fill = (model.get_initializer(nxt.input[i]) for i in (0, 3 - at))
                if cond is None or fill is None or nxt.input[at] != tail \
                        or np.any(np.asarray(fill) > _MASKED):
                    fail(f"{nxt.name!r} is not a constant mask")
                mask = np.asarray(cond).astype(bool)
                if at == 2:
                    mask = ~mask
            nodes.append(nxt)
            tail = nxt.output[0]
        softmax, scores = nxt, tail
        rank = len(model.get_tensor_shape(scores))
        axis = next((a.i for a in softmax.attribute if a.name == "axis"), -1)
        if axis not in (-1, rank - 1):
            fail("the softmax is not over the last axis")
        nodes.append(softmax)
        p_q, mm2, out_moves, out_q = self._context(model, softmax, nodes, fail)
        q_dq, q_moves = self._chain(model, mm1.input[0], mm1)
        k_dq, k_moves = self._chain(model, mm1.input[1], mm1, _KV_MOVES)
        v_dq, v_moves = self._chain(model, mm2.input[1], mm1, _KV_MOVES)
        shape = model.get_tensor_shape(q_dq.input[0])
        kv_shape = model.get_tensor_shape(k_dq.input[0])
        if model.get_tensor_shape(v_dq.input[0]) != kv_shape or len(shape) < 2 \
                or _tokens(kv_shape) != _tokens(shape) \
                or model.get_tensor_shape(out_q.output[0]) != shape or _tokens(shape) is None:
            fail(f"q, k, v and the output must be one sequence (…, T, D), got {shape} and "
                 f"{kv_shape}")
        T, D = _tokens(shape), shape[-1]
        heads_shape = model.get_tensor_shape(mm1.input[0])
        heads = D // heads_shape[-1]
        d = D // heads
        kv_heads = kv_shape[-1] // d
        if kv_heads < 1 or kv_shape[-1] % d or heads % kv_heads:
            fail(f"k, v features ({kv_shape[-1]}) are not kv heads of {d} that divide "
                 f"{heads} heads")
        rep = heads // kv_heads
        self._layout(model, q_dq, q_moves, mm1, "q", T, D, heads, False)
        for dq, moves, what, tr in ((k_dq, k_moves, "k", True), (v_dq, v_moves, "v", False)):
            self._layout(model, dq, moves, mm1, what, T, kv_heads * d, kv_heads, tr, rep)
        # the merge: (H, T, d) → (T, H·d) with head h on features h·d …
        src = np.arange(T * D).reshape(T, heads, D // heads).transpose(1, 0, 2)
        merged = self._run_moves(model, out_moves,
                                 src.reshape(model.get_tensor_shape(mm2.output[0])))
        if not np.array_equal(merged.reshape(T, D), np.arange(T * D).reshape(T, D)):
            fail("the head merge is not (H, T, d) → (T, H·d)")
        causal = False
        if mask is not None:
            m = np.broadcast_to(mask, (T, T)) if mask.ndim <= 2 else \
                mask.reshape(-1, *mask.shape[-2:])
            m = m.reshape(-1, T, T)
            tril = np.tril(np.ones((T, T), dtype=bool))
            if all(np.array_equal(x, tril) for x in m):
                causal = True
            elif not m.all():
                fail("the mask is neither empty nor causal")
        nodes += q_moves + k_moves + v_moves
        return _Attention(nodes, q_dq, k_dq, v_dq, heads, scale, causal, p_q, out_q, scores, T,
                          kv_heads if rep > 1 else 0)

    @staticmethod
    def _context(model, softmax, nodes: list, fail):
        """``softmax → QuantizeLinear → DequantizeLinear → MatMul(·, v) [→ data movement] →
        QuantizeLinear``: ``(p_q, mm2, moves, out_q)``, the nodes after the softmax appended to
        ``nodes``."""
        p_q = _single_consumer(model, softmax.output[0], ("QuantizeLinear",))
        if p_q is None:  # float probabilities: the kernel's own uint8 codes stand for them
            mm2 = _single_consumer(model, softmax.output[0], ("MatMul",))
            if mm2 is None or mm2.input[0] != softmax.output[0]:
                fail("the probabilities are not multiplied by v")
            nodes.append(mm2)
        else:
            p_dq = _single_consumer(model, p_q.output[0], ("DequantizeLinear",))
            mm2 = None if p_dq is None else _single_consumer(model, p_dq.output[0], ("MatMul",))
            if mm2 is None or mm2.input[0] != p_dq.output[0]:
                fail("the probabilities are not quantized and multiplied by v")
            nodes += [p_q, p_dq, mm2]
        tail, moves = mm2.output[0], []
        while (nxt := _single_consumer(model, tail, _MOVES)) is not None:
            moves.append(nxt)
            tail = nxt.output[0]
        out_q = _single_consumer(model, tail, ("QuantizeLinear",))
        if out_q is None:
            fail("the context is not quantized")
        nodes += [*moves, out_q]
        return p_q, mm2, moves, out_q

    # --------------------------------------------------------------------------------------
    def apply(self, model):
        self.bounds = {}
        self._new_pass()
        own = {}
        for mm in [n for n in model.graph.node if n.op_type == "MatMul"]:
            if mm not in model.graph.node:
                continue
            match = self._match(model, mm)
            if match is None or self._waits([match.q.input[0], match.k.input[0],
                                             match.v.input[0]]):
                continue
            out, eps = self._lower(model, mm, match)
            own[out] = eps
            self._lowered(model, out)
        _remove_dead_nodes(model)
        self._propagate(model, own)
        return _refresh(model), False

    def _lower(self, model, node, a: _Attention):
        def quant(q, what, signed=True):
            s = _scalar(model, q.input[1], node, f"{what} scale")
            z = model.get_initializer(q.input[2])
            if signed and (int(z) != 0 or z.dtype != np.int8):
                raise HwsimError(f"cannot lower attention at {node.name!r}: {what} must be "
                                 "int8 codes with zero point 0")
            return s, int(z), z.dtype == np.int8

        s_q, _, _ = quant(a.q, "q")
        s_k, _, _ = quant(a.k, "k")
        s_v, _, _ = quant(a.v, "v")
        s_y, _, _ = quant(a.out_q, "the output")
        if _single_consumer(model, a.out_q.output[0], ("Clip",)) is not None:
            raise HwsimError(f"cannot lower attention at {node.name!r}: a narrow output "
                             "quantizer is not lowered")
        # float probabilities (no quantizer in the file): no rounding or clipping of the
        # file's to account for; the kernel's uint8 codes of 1/256 are in the softmax bound
        s_p, z_p, p_signed = (quant(a.p_q, "probability", signed=False) if a.p_q is not None
                              else (0.0, 0, False))
        shape = model.get_tensor_shape(a.q.input[0])
        T, D = a.L, shape[-1]   # the keys per row: the sequence (a window: w)
        dh, L = D // a.heads, a.L
        if a.scale <= 0:
            raise HwsimError(f"cannot lower attention at {node.name!r}: the score scale must "
                             "be positive")
        # score format: the most fractional bits that hold the calibration's largest score
        peak = self._peaks.get(a.scores)
        frac = 4
        if peak is not None:
            frac = 7
            while frac > 0 and peak * 2 ** frac + 1 > 127:
                frac -= 1
        f_log = -math.log2(s_p) if s_p > 0 else 8.0
        prob_frac = round(f_log) if abs(f_log - round(f_log)) < 1e-9 \
            and 1 <= round(f_log) <= 8 else 8
        mult_bits = dialect.IntAttention.MULT_BITS
        score_real = s_q * s_k * a.scale * 2 ** frac
        sm_, ss_ = fold_scale(s_q, s_k, a.scale, 2.0 ** frac, bits=mult_bits)
        out_real = 2.0 ** -prob_frac * s_v / (127 * s_y)
        om, os_ = fold_scale(out_real, bits=mult_bits)
        def codes(tensor):
            """Back through code reshapes that keep the last axis (a head split of one kv
            head hoisted onto the codes): the same streamed vectors."""
            prod = model.find_producer(tensor)
            while prod is not None and prod.op_type == "Reshape" and \
                    model.get_tensor_shape(prod.input[0])[-1] == \
                    model.get_tensor_shape(tensor)[-1]:
                tensor = prod.input[0]
                prod = model.find_producer(tensor)
            return tensor

        new = helper.make_node(
            "IntAttention", [a.q.input[0], codes(a.k.input[0]), codes(a.v.input[0])],
            [a.out_q.output[0]],
            domain=dialect.DOMAIN, name=f"{node.name}/attention",
            kernel=dialect.IntAttention.KERNEL, heads=a.heads, score_mult=sm_,
            score_shift=ss_, score_frac=frac, prob_frac=prob_frac, out_mult=om, out_shift=os_,
            causal=int(a.causal), real_factors=[float(score_real), float(out_real)])
        if a.kv_heads:
            new.attribute.append(helper.make_attribute("kv_heads", a.kv_heads))
        if shape[-2] != T:  # sequence first, batch 1: (T, 1, D) is one window of T tokens
            new.op_type = "IntWindowAttention"
            new.attribute.append(helper.make_attribute("window", T))
        _replace(model, a.nodes, [new])
        # ---- the bound (class docstring)
        op = getCustomOp(new)
        p = op.params((T, D))
        beta = sm.max_abs_error_bound(p.softmax, L)
        acc_peak = 128 * 128 * dh
        eta = 2.0 ** -(frac + 1) + acc_peak * abs(sm_ * 2.0 ** -ss_ - score_real) * 2.0 ** -frac \
            + (dh + 3) * _U32 * acc_peak * s_q * s_k * a.scale
        qmax = 127 if p_signed else 255
        c_p = max(0.0, 1.0 - (qmax - z_p) * s_p) if a.p_q is not None else 0.0
        g = s_v / s_y
        amax_max = 128 * 2 ** prob_frac * (1 + L * beta)
        eps = 128 * g * (L * beta + math.expm1(2 * eta) + L * (s_p / 2 + c_p))
        eps += (0.5 + 127 * 2.0 ** -(p.recip_bits - 1)) * (128 / 127) * (1 + L * beta) * g
        eps += 127 * amax_max * abs(om * 2.0 ** -os_ - out_real)
        eps += 16 * _U32 * 128 * g * (L + 2)
        return a.out_q.output[0], eps

    def _propagate(self, model, own: dict) -> None:
        """Bounds in graph order: each ``IntAttention`` this step made, then nodes reading a
        bounded tensor (``IntMatMul → Requant``, ``IntEltwise``, ``LutAct``)."""
        for node in model.graph.node:
            out = node.output[0] if node.output else None
            if out in own:
                self.bounds[out] = math.floor(own[out]) + 1
            elif node.op_type == "Requant" and node.domain == dialect.DOMAIN:
                mm = model.find_producer(node.input[0])
                if mm is None or mm.op_type not in ("IntMatMul", "TernaryMatMul") \
                        or not self.bounds.get(mm.input[0], 0):
                    continue
                w = model.get_initializer(mm.input[1]).astype(np.int64)
                colsum = float(np.max(np.sum(np.abs(w), axis=0)))
                rq = getCustomOp(node)
                f = rq.get_nodeattr("multiplier") * 2.0 ** -rq.get_nodeattr("shift")
                self.bounds[out] = math.floor(f * self.bounds[mm.input[0]] * colsum) + 1
            elif node.op_type == "IntEltwise" and node.domain == dialect.DOMAIN:
                da, db = (self.bounds.get(i, 0) for i in node.input[:2])
                if not (da or db):
                    continue
                p = getCustomOp(node).params()
                f = eltwise_real_factors(p)
                if p.op == "add":
                    eps = da * f[0] + db * f[1]
                else:
                    eps = f[0] * (da * p.b_peak + db * p.a_peak + da * db)
                self.bounds[out] = math.floor(eps) + 1
            elif node.op_type == "LutAct" and node.domain == dialect.DOMAIN:
                d = self.bounds.get(node.input[0], 0)
                if not d:
                    continue
                t = np.asarray(getCustomOp(node).params().table, dtype=np.int64)
                self.bounds[out] = int(max(np.max(np.abs(t[k:] - t[:-k]), initial=0)
                                           for k in range(1, min(d, len(t) - 1) + 1)))
