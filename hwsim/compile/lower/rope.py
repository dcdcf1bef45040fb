"""The approximate step that runs rotary position embeddings on int8 codes:
``DequantizeLinear → [head split] → RotaryEmbedding → QuantizeLinear`` becomes ``IntRotary``
on the token-major codes, then ``DequantizeLinear`` and the same head split."""

from __future__ import annotations

import math

import numpy as np
from onnx import TensorProto, helper
from qonnx.transformation.base import Transformation

from hwsim.compile import dialect
from hwsim.errors import HwsimError
from quant.qtype import quantize_multiplier

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
from .pointwise import _elem_type

__all__ = ["ROPE_FRAC", "LowerRotary", "SinkRotaryMoves"]

#: fractional bits of the cos / sin table codes (|code| ≤ 2**ROPE_FRAC fits 16-bit signed)
ROPE_FRAC = 14
#: width of the rescale multiplier M of IntRotary
ROPE_MULT_BITS = 16
_MOVES = ("Reshape", "Transpose", "Identity")


def _attrs(node) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


class LowerRotary(Passes, Transformation):
    """Approximate: a ``RotaryEmbedding`` (opset 23, non-interleaved, whole head rotated, no
    ``position_ids``) between int8 codes becomes ``IntRotary`` (kernel ``rope``).

    Pattern::

        DequantizeLinear(c: int8 (…, T, F), zero point 0) → [Reshape / Transpose]
        → RotaryEmbedding(x, cos_cache, sin_cache) → QuantizeLinear(int8, zero point 0)

    The head split between ``c`` and the rotary must only move data and give head ``g`` the
    features ``[g·hd, (g+1)·hd)`` of each token (checked on an index array, as the attention
    step checks its head split); ``c`` holds one sequence (leading axes of size 1), so row
    ``t`` is position ``t`` and the caches' rows are the tables. The result is
    ``IntRotary(c) → [the same head split on codes]`` (then :class:`SinkRotaryMoves`:
    ``IntRotary(c) → DequantizeLinear → [head split]``): the codes stay token-major, in the
    order the dataflow stream carries them, and the attention step finds its usual
    ``DequantizeLinear → head split`` on q and k.

    Integers: ``C = round(cos · 2**F)``, ``S = round(sin · 2**F)`` (``F`` =
    :data:`ROPE_FRAC`), ``M · 2**-shift ≈ s_in · 2**-F / s_out`` (16-bit ``M``); the kernel
    rounds ``(c_i·C − c_j·S) · M · 2**-shift`` half to even and saturates to int8.

    Bound (output LSBs, ``floor(δ) + 1``; ``g = s_in / s_out``): before rounding, the integer
    value differs from the file's ``(x·cos + rot(x)·sin) / s_out`` by at most
    ``δ = 256·g·2**-(F+1)`` (table rounding, ``|c_i| + |c_j| ≤ 256``)
    ``+ 128·√2·2**F·(1 + 2**-F)·|M·2**-shift − g·2**-F|`` (the folded factor on the largest
    ``|c_i·C − c_j·S|``) ``+ 4·2**-24·182·(1 + g)`` (float32 rounding of the original's two
    products, sum and division); two values within ``δ`` round half-even to codes at most
    ``floor(δ) + 1`` apart.
    """

    exact = False

    def __init__(self):
        super().__init__()
        self.bounds: dict[str, int] = {}

    def apply(self, model):
        self._new_pass()
        for node in [n for n in model.graph.node if n.op_type == "RotaryEmbedding"]:
            self._lower(model, node)
        _remove_dead_nodes(model)
        return _refresh(model), False

    # --------------------------------------------------------------------------------------
    def _lower(self, model, node) -> None:
        def fail(why):
            raise HwsimError(f"cannot lower RotaryEmbedding node {node.name!r}: {why}")

        a = _attrs(node)
        if a.get("interleaved", 0):
            fail("the interleaved form is not lowered (only rotate-half)")
        partial = int(a.get("rotary_embedding_dim", 0) or 0)
        if len(node.input) > 3 and node.input[3]:
            fail("position_ids are not lowered (positions are the token rows 0 … T−1)")
        moves, prod = [], model.find_producer(node.input[0])
        while prod is not None and prod.op_type in _MOVES \
                and _single_consumer(model, prod.output[0], (*_MOVES, "RotaryEmbedding")):
            moves.insert(0, prod)
            prod = model.find_producer(prod.input[0])
        dq = prod
        if dq is None or dq.op_type != "DequantizeLinear":
            fail("its input is not quantized codes moved by Reshape/Transpose")
        codes = dq.input[0]
        q = _single_consumer(model, node.output[0], ("QuantizeLinear",))
        if q is None or _single_consumer(model, q.output[0], ("Clip",)) is not None:
            fail("its output is not read by one int8 QuantizeLinear (a narrow quantizer's "
                 "Clip is not lowered)")
        if self._waits([codes]):
            return
        for what, quant in (("input", dq), ("output", q)):
            if len(quant.input) < 3 or _elem_type(model, quant.input[2]) != TensorProto.INT8 \
                    or int(np.asarray(model.get_initializer(quant.input[2]))) != 0:
                fail(f"the {what} must be int8 codes with zero point 0")
        s_in = _scalar(model, dq.input[1], node, "input scale")
        s_out = _scalar(model, q.input[1], node, "output scale")
        shape = model.get_tensor_shape(codes)
        rshape = model.get_tensor_shape(node.input[0])
        if not shape or len(shape) < 2 or math.prod(shape[:-2]) != 1:
            fail(f"the codes must be one sequence (…, T, F), got shape {shape}")
        T, F = shape[-2:]
        # the rotated tensor as (groups, T, hd): 4-D (B, H, T, hd); 3-D (B, T, n·hd)
        index = run_moves(model, moves, np.arange(T * F).reshape(shape))
        if len(rshape) == 4:
            hd = rshape[3]
            index = index.reshape(-1, rshape[2], hd)
        elif len(rshape) == 3:
            n_heads = int(a.get("num_heads", 0) or 0)
            if n_heads < 1 or rshape[2] % n_heads:
                fail("a 3-D input needs num_heads dividing its last axis")
            hd = rshape[2] // n_heads
            index = index.reshape(rshape[0], rshape[1], n_heads, hd).transpose(0, 2, 1, 3)
            index = index.reshape(-1, rshape[1], hd)
        else:
            fail(f"the input must be 3-D or 4-D, got shape {rshape}")
        if partial not in (0, hd):
            fail(f"a partial rotation (rotary_embedding_dim {partial} of {hd}) is not lowered")
        groups = index.shape[0]
        want = np.arange(T * F).reshape(T, groups, hd).transpose(1, 0, 2)
        if hd % 2 or groups * hd != F or index.shape[1] != T or not np.array_equal(index, want):
            fail("the head split is not (T, H·hd) → heads of hd features with head h on "
                 "features h·hd … (h+1)·hd − 1 of each token")
        cos, sin = (model.get_initializer(i) for i in node.input[1:3])
        if cos is None or sin is None:
            fail("the cos / sin caches are not constants")
        cos, sin = (np.asarray(c, np.float64) for c in (cos, sin))
        cos, sin = (c.reshape(-1, *c.shape[-2:]) for c in (cos, sin))
        if cos.shape[-2:] != (T, hd // 2) or sin.shape != cos.shape \
                or any(not np.array_equal(c[0], c[i]) for c in (cos, sin)
                       for i in range(c.shape[0])):
            fail(f"the caches must be one (T, hd/2) = ({T}, {hd // 2}) table for every "
                 "sequence")
        cos, sin = cos[0], sin[0]
        one = 1 << ROPE_FRAC
        if np.max(np.abs(cos), initial=0) > 1 or np.max(np.abs(sin), initial=0) > 1:
            fail("the cos / sin tables leave [−1, 1]")
        C = np.clip(np.round(cos * one), -one, one).astype(np.int64)
        S = np.clip(np.round(sin * one), -one, one).astype(np.int64)
        g = s_in / s_out
        real = g * 2.0 ** -ROPE_FRAC
        try:
            mult, shift = quantize_multiplier(real, bits=ROPE_MULT_BITS)
        except HwsimError as e:
            fail(f"the rescale s_in/s_out = {g:.3g} has no {ROPE_MULT_BITS}-bit multiplier ({e})")
        new_codes = f"{codes}_rope"
        rope = helper.make_node(
            "IntRotary", [codes], [new_codes], domain=dialect.DOMAIN, name=f"{node.name}/rope",
            kernel="rope", heads=groups, head_dim=hd, frac=ROPE_FRAC, mult=int(mult),
            shift=int(shift), cos=[int(v) for v in C.ravel()], sin=[int(v) for v in S.ravel()],
            real_factor=float(g))
        # the same head split, now on the codes, ends in the old output codes (the step is
        # measured there); SinkRotaryMoves then puts the DequantizeLinear before it
        tail, new_moves = new_codes, []
        for i, n in enumerate(moves):
            out = q.output[0] if i == len(moves) - 1 else f"{node.name}/rope_move{i}"
            copy = helper.make_node(n.op_type, [tail, *n.input[1:]], [out],
                                    name=f"{node.name}/rope_{n.name}")
            copy.attribute.extend(n.attribute)
            new_moves.append(copy)
            tail = out
        if not moves:
            rope.output[0] = new_codes = q.output[0]
        _replace(model, [node, q], [rope, *new_moves])
        self._lowered(model, new_codes)
        peak = 128 * math.sqrt(2) * one * (1 + 2.0 ** -ROPE_FRAC)
        delta = 256 * g * 2.0 ** -(ROPE_FRAC + 1) + peak * abs(mult * 2.0 ** -shift - real) \
            + 4 * _U32 * 182 * (1 + g)
        self.bounds[q.output[0]] = math.floor(delta) + 1


class SinkRotaryMoves(Transformation):
    """Exact: ``IntRotary → [Reshape / Transpose on codes] → DequantizeLinear`` (per-tensor)
    becomes ``IntRotary → DequantizeLinear → [the same moves]``, the form the attention step
    and the linear layers read (``DequantizeLinear`` of token-major codes, then the head
    split). Where the moves after that ``DequantizeLinear`` (the head split, then a head merge
    back to tokens) compose to the identity, they go: the readers read the
    ``DequantizeLinear``."""

    exact = True

    def apply(self, model):
        for rope in [n for n in model.graph.node if n.op_type == "IntRotary"]:
            moves, tail = [], rope.output[0]
            while (nxt := _single_consumer(model, tail, _MOVES)) is not None:
                moves.append(nxt)
                tail = nxt.output[0]
            dq = _single_consumer(model, tail, ("DequantizeLinear",))
            if moves and dq is not None:
                deq = helper.make_node("DequantizeLinear", [rope.output[0], *dq.input[1:]],
                                       [f"{rope.output[0]}_dq"], name=f"{dq.name}_sunk")
                prev, new = deq.output[0], [deq]
                for i, n in enumerate(moves):
                    out = dq.output[0] if i == len(moves) - 1 else f"{n.output[0]}_f"
                    copy = helper.make_node(n.op_type, [prev, *n.input[1:]], [out],
                                            name=n.name)
                    copy.attribute.extend(n.attribute)
                    new.append(copy)
                    prev = out
                _replace(model, [*moves, dq], new)
        _remove_dead_nodes(model)
        model = _refresh(model)
        for rope in [n for n in model.graph.node if n.op_type == "IntRotary"]:
            dq = _single_consumer(model, rope.output[0], ("DequantizeLinear",))
            if dq is not None:
                _drop_identity_moves(model, dq.output[0])
        _remove_dead_nodes(model)
        return _refresh(model), False


def _drop_identity_moves(model, tensor: str) -> None:
    """Bypass the longest chain of moves after ``tensor`` (each the only reader of the one
    before) whose composition maps every element to itself."""
    shape = model.get_tensor_shape(tensor)
    if not shape:
        return
    index = np.arange(math.prod(shape)).reshape(shape)
    tail, end = tensor, None
    outputs = {o.name for o in model.graph.output}
    while (n := _single_consumer(model, tail, _MOVES)) is not None:
        if n.op_type == "Reshape" and not model.get_tensor_shape(n.output[0]):
            return
        index = run_moves(model, [n], index)
        tail = n.output[0]
        if list(index.shape) == list(shape) and np.array_equal(index.ravel(),
                                                               np.arange(index.size)):
            end = tail
    if end is None or end in outputs:
        return
    for reader in model.find_consumers(end) or []:
        for i, name in enumerate(reader.input):
            if name == end:
                reader.input[i] = tensor
