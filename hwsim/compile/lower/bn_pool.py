"""Approximate steps that bring BatchNorm and average pooling onto the convolution and linear
steps: nothing new is built, the float graph is rewritten into layers they already lower.

* :class:`FoldBatchNorm`: ``BatchNormalization`` (inference form) after a quantized
  ``Conv``/``Gemm``/``MatMul`` is folded into the layer's weight scale and bias.
* :class:`AveragePoolToConv`: ``AveragePool``/``GlobalAveragePool`` on dequantized codes,
  read by a quantizer, becomes a depthwise ``Conv`` whose weight codes are all 1 with the
  scale ``1/k²``; read by a ``Conv``, it is folded into that convolution's kernel.

Both run after :class:`~hwsim.compile.lower.codes.WeightQuantToCodes`; the graph they leave
is float, so each bounds, per quantizer its rewrite feeds, the code deviation the float32
re-association can cause (:func:`_float_bound`).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.transformation.base import Transformation

from hwsim.errors import HwsimError

from ._graph import _U32, _const, _refresh, _remove_dead_nodes, _single_consumer

__all__ = ["AveragePoolToConv", "FoldBatchNorm"]


def _attrs(node) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _quantizer_after(model, tensor: str):
    """The ``QuantizeLinear`` reading ``tensor`` (through one ``Relu``) and its code tensor
    (after a ``Clip``), or ``(None, None)``."""
    relu = _single_consumer(model, tensor, ("Relu",))
    q = _single_consumer(model, relu.output[0] if relu is not None else tensor,
                         ("QuantizeLinear",))
    if q is None:
        return None, None
    clip = _single_consumer(model, q.output[0], ("Clip",))
    return q, (clip.output[0] if clip is not None else q.output[0])


def _float_bound(terms: int, peak: float, s_y: float) -> int:
    """``floor(ε) + 1`` with ``ε = 2 (terms + 8) · 2**-24 · peak / s_y``: the two float32
    evaluations (before and after the rewrite) of a sum of ``terms`` products whose
    magnitudes add up to at most ``peak`` each round off by at most ``(terms + 8)`` unit
    roundoffs of ``peak`` (products, additions, the normalisation's few operations); two
    reals ``ε`` output LSBs apart round to codes at most ``floor(ε) + 1`` apart."""
    return math.floor(2 * (terms + 8) * _U32 * peak / s_y) + 1


class FoldBatchNorm(Transformation):
    """Approximate: ``BatchNormalization`` (inference: running mean ``μ`` and variance ``v``)
    on the output of a ``Conv``, ``Gemm`` or ``MatMul [+ Add]`` whose weight is dequantized
    int8 codes is folded into that layer, the BN node removed:

    ``BN(layer(x, DQ(W, s)) + b) = layer(x, DQ(W · sign g, s · |g|)) + (b − μ) · g + β``,
    ``g = γ / √(v + ε)`` per output channel. The weight scale becomes per channel (the
    convolution and linear steps fold one ``M · 2**-S`` per output channel); a negative
    ``g`` flips the sign of its channel's codes (refused where a code −128 would flip out of
    the int8 range); ``g = 0`` is refused. Exact in real arithmetic; :attr:`bounds` maps the
    code tensor of the quantizer that reads the layer (through a ``Relu``) to
    :func:`_float_bound`.
    """

    exact = False

    def __init__(self):
        super().__init__()
        self.bounds: dict[str, int] = {}

    def apply(self, model):
        self.bounds = {}
        for bn in [n for n in model.graph.node if n.op_type == "BatchNormalization"]:
            self._fold(model, bn)
        _remove_dead_nodes(model)
        return _refresh(model), False

    def _fold(self, model, bn) -> None:
        def fail(why):
            raise HwsimError(f"cannot fold BatchNormalization node {bn.name!r}: {why}")

        if len(bn.output) != 1 or _attrs(bn).get("training_mode", 0):
            fail("only the inference form (running statistics, one output) is folded")
        gamma, beta, mean, var = (model.get_initializer(i) for i in bn.input[1:5])
        if any(v is None for v in (gamma, beta, mean, var)):
            fail("its scale, bias, mean and variance must be constants")
        eps = float(_attrs(bn).get("epsilon", 1e-5))
        gamma, beta, mean, var = (np.asarray(v, np.float64).reshape(-1)
                                  for v in (gamma, beta, mean, var))
        g = gamma / np.sqrt(var + eps)
        layer = model.find_producer(bn.input[0])
        add = None
        if layer is not None and layer.op_type == "Add":  # MatMul → Add(bias) → BN
            add = layer
            layer = next((model.find_producer(i) for i in add.input
                          if model.find_producer(i) is not None
                          and model.find_producer(i).op_type == "MatMul"), None)
            consts = [i for i in add.input if model.get_initializer(i) is not None]
            if layer is None or len(consts) != 1:
                fail("it reads an Add that is not a linear layer's constant bias")
        if layer is None or layer.op_type not in ("Conv", "Gemm", "MatMul"):
            fail("it does not follow a Conv, Gemm or MatMul: only a BatchNorm right after "
                 "a quantized layer is folded (into its weights)")
        chain = [layer, *([add] if add is not None else []), bn]
        for n, reader in itertools.pairwise(chain):
            if _single_consumer(model, n.output[0], (reader.op_type,)) is None:
                fail(f"the {n.op_type} node {n.name!r} it follows has other readers")
        w_dq = model.find_producer(layer.input[1])
        codes = model.get_initializer(w_dq.input[0]) if w_dq is not None \
            and w_dq.op_type == "DequantizeLinear" else None
        if codes is None or codes.dtype != np.int8:
            fail(f"the weight of {layer.op_type} node {layer.name!r} is not int8 codes")
        if len(w_dq.input) > 2 and w_dq.input[2] and np.any(model.get_initializer(w_dq.input[2])):
            fail("its layer's weight zero point is not 0")
        # the weight axis that indexes the layer's output channels
        if layer.op_type == "Conv":
            out_axis = 0
        elif layer.op_type == "Gemm":
            out_axis = 0 if _attrs(layer).get("transB", 0) else 1
        else:
            out_axis = 1
        shape = model.get_tensor_shape(bn.input[0]) or []
        channels = codes.shape[out_axis]
        if layer.op_type != "Conv" and len(shape) != 2:
            fail(f"a BatchNorm over axis 1 of a linear layer's {len(shape)}-D output does not "
                 "normalise its output features")
        if g.size != channels or codes.ndim not in (2, 4):
            fail(f"{g.size} BatchNorm channels for {channels} output channels")
        if np.any(g == 0) or not np.all(np.isfinite(g)):
            fail("a channel's gain γ / √(var + ε) is 0 or not finite")
        s = np.asarray(model.get_initializer(w_dq.input[1]), np.float64)
        if s.size != 1:
            axis = _attrs(w_dq).get("axis", 1)
            if s.size != channels or axis % codes.ndim != out_axis:
                fail("its layer's weight scale is neither per tensor nor per output channel")
        s = np.broadcast_to(s.reshape(-1), (channels,))
        sign = np.where(g < 0, -1, 1)
        bshape = [1] * codes.ndim
        bshape[out_axis] = channels
        flipped = codes.astype(np.int16) * sign.reshape(bshape)
        if flipped.max(initial=0) > 127:
            bad = int(np.flatnonzero(np.any(np.moveaxis(flipped, out_axis, 0).reshape(
                channels, -1) > 127, axis=1))[0])
            fail(f"channel {bad} has a negative gain and a weight code −128, whose flip +128 "
                 "leaves int8 (use a narrow-range weight quantizer)")
        # the layer's bias: Conv/Gemm input 2, or the Add's constant
        if add is not None:
            b_name = next(i for i in add.input if model.get_initializer(i) is not None)
        else:
            b_name = layer.input[2] if len(layer.input) > 2 and layer.input[2] else None
        b = np.zeros(channels) if b_name is None else \
            np.broadcast_to(np.asarray(model.get_initializer(b_name), np.float64).reshape(-1),
                            (channels,))
        new_b = ((b - mean) * g + beta).astype(np.float32)
        new_s = (s * np.abs(g)).astype(np.float32)
        name = w_dq.input[0]
        _const(model, f"{name}_bn", flipped.astype(np.int8))
        model.set_tensor_datatype(f"{name}_bn", model.get_tensor_datatype(name)
                                  if model.get_tensor_datatype(name) != DataType["FLOAT32"]
                                  else DataType["INT8"])
        dq = helper.make_node("DequantizeLinear", [f"{name}_bn",
                                                  _const(model, f"{name}_bn_scale", new_s)],
                              [f"{layer.output[0]}/w_bn"], name=f"{bn.name}/weights",
                              axis=out_axis)
        graph = model.graph
        graph.node.insert(list(graph.node).index(layer), dq)
        layer.input[1] = dq.output[0]
        bias = _const(model, f"{bn.name}/bias", new_b)
        if add is not None:
            add.input[list(add.input).index(b_name)] = bias
        elif layer.op_type == "MatMul":
            add = helper.make_node("Add", [layer.output[0], bias], [bn.output[0]],
                                   name=f"{bn.name}/bias_add")
            graph.node.insert(list(graph.node).index(bn), add)
        elif len(layer.input) > 2:
            layer.input[2] = bias
        else:
            layer.input.append(bias)
        last = add if add is not None else layer
        if last.output[0] != bn.output[0]:
            last.output[0] = bn.output[0]
        graph.node.remove(bn)
        q, out_codes = _quantizer_after(model, bn.output[0])
        a_dq = model.find_producer(layer.input[0])
        if q is None or a_dq is None or a_dq.op_type != "DequantizeLinear":
            return  # the layer's own step names what it cannot lower
        s_a = float(np.max(np.abs(model.get_initializer(a_dq.input[1]))))
        s_y = float(np.min(np.abs(model.get_initializer(q.input[1]))))
        per_out = np.moveaxis(np.abs(codes.astype(np.float64)), out_axis, 0).reshape(channels, -1)
        colsum = per_out.sum(axis=1)
        # the largest |term| sums of either form, per channel, in the original's units
        peak = np.abs(g) * (s_a * s * 255 * colsum + np.abs(b) + np.abs(mean)) + np.abs(beta)
        self.bounds[out_codes] = _float_bound(per_out.shape[1], float(np.max(peak)), s_y)


class AveragePoolToConv(Transformation):
    """Approximate: ``AveragePool`` (square kernel ``k``, equal strides, equal pads with
    ``count_include_pad``, or none) or ``GlobalAveragePool`` (a square map: ``k`` = its
    height) on dequantized codes, read by a ``QuantizeLinear``, becomes a depthwise ``Conv``
    with weight codes all 1 (int8) and weight scale ``1/k²``: the convolution step lowers it
    to ``IntConv → Requant`` (the sum of ``k²`` codes, rescaled by ``s_a / (k² s_y)``).
    A pool read directly by a ``Conv`` (no quantizer between) is folded into that
    convolution where its windows tile the map without overlap (:meth:`_fuse`); any other
    pool whose result is not quantized is refused (its mean is not a code). :attr:`bounds`
    maps the quantizer's code tensor to :func:`_float_bound` (sum order and the rounded
    ``1/k²``)."""

    exact = False

    def __init__(self):
        super().__init__()
        self.bounds: dict[str, int] = {}

    def apply(self, model):
        self.bounds = {}
        for node in [n for n in model.graph.node
                     if n.op_type in ("AveragePool", "GlobalAveragePool")]:
            self._rewrite(model, node)
        _remove_dead_nodes(model)
        return _refresh(model), False

    def _rewrite(self, model, node) -> None:
        def fail(why):
            raise HwsimError(f"cannot lower {node.op_type} node {node.name!r}: {why}")

        shape = model.get_tensor_shape(node.input[0]) or []
        if len(shape) != 4:
            fail(f"only 2-D pooling of NCHW tensors is lowered (input shape {shape})")
        _, c, h, w = shape
        attrs = _attrs(node)
        if node.op_type == "GlobalAveragePool":
            if h != w:
                fail(f"a global pool of a {h}×{w} map: only square maps are lowered")
            k, stride, pad = h, h, 0
        else:
            kernel = list(attrs.get("kernel_shape", []))
            strides = list(attrs.get("strides", [1] * len(kernel)))
            pads = list(attrs.get("pads", [0] * 2 * len(kernel)))
            if len(kernel) != 2 or kernel[0] != kernel[1] or len(set(strides)) != 1 \
                    or len(set(pads)) != 1 or list(attrs.get("dilations", [1, 1])) != [1, 1] \
                    or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                fail("only square kernels, equal strides, equal explicit pads and no "
                     "dilation are lowered")
            k, stride, pad = kernel[0], strides[0], pads[0]
            if pad and not attrs.get("count_include_pad", 0):
                fail("padding without count_include_pad (the divisor changes at the border) "
                     "is not lowered")
            if attrs.get("ceil_mode", 0) and ((h + 2 * pad - k) % stride
                                              or (w + 2 * pad - k) % stride):
                fail("ceil_mode with a partial last window is not lowered")
        a_dq = model.find_producer(node.input[0])
        if a_dq is None or a_dq.op_type != "DequantizeLinear":
            fail("its input is not quantized codes")
        q, out_codes = _quantizer_after(model, node.output[0])
        conv = _single_consumer(model, node.output[0], ("Conv",))
        if q is None and conv is not None and conv.input[0] == node.output[0] and not pad \
                and stride == k and not h % k and not w % k and self._fuse(model, node, conv, k):
            return
        if q is None:
            users = ", ".join(f"{n.op_type} node {n.name!r}"
                              for n in model.find_consumers(node.output[0]) or []) \
                or "a graph output"
            fail(f"its result goes to {users}: put a quantizer (e.g. a QuantIdentity) "
                 "after the pool (a pool read by a convolution is folded into it only for "
                 "non-overlapping windows that tile the map, and a square, undilated kernel)")
        ones = _const(model, f"{node.name}/w_codes", np.ones((c, 1, k, k), np.int8))
        model.set_tensor_datatype(ones, DataType["INT8"])
        scale = _const(model, f"{node.name}/w_scale", np.array(1.0 / (k * k), np.float32))
        dq = helper.make_node("DequantizeLinear", [ones, scale], [f"{node.name}/w"],
                              name=f"{node.name}/weights")
        conv = helper.make_node("Conv", [node.input[0], dq.output[0]], [node.output[0]],
                                name=node.name, group=c, kernel_shape=[k, k],
                                strides=[stride, stride], pads=[pad] * 4)
        graph = model.graph
        at = list(graph.node).index(node)
        graph.node.remove(node)
        graph.node.insert(at, conv)
        graph.node.insert(at, dq)
        s_a = float(np.asarray(model.get_initializer(a_dq.input[1])).reshape(-1)[0])
        s_y = float(np.asarray(model.get_initializer(q.input[1])).reshape(-1)[0])
        self.bounds[out_codes] = _float_bound(k * k, 255 * s_a, s_y)

    def _fuse(self, model, pool, conv, k: int) -> bool:
        """Fold a non-overlapping ``k × k`` average pool (stride ``k``, no pads, tiling the
        map) into the ``Conv`` that reads it, exactly in real arithmetic: each weight tap
        becomes a ``k × k`` block of the same code with the scale ``s_w / k²``, the kernel
        ``K·k``, stride ``S·k`` and pads ``p·k`` (a padded pooled pixel is a block of padded
        pixels). Returns False (nothing changed) where the ``Conv`` is not of that form."""
        attrs = _attrs(conv)
        w_dq = model.find_producer(conv.input[1])
        codes = model.get_initializer(w_dq.input[0]) if w_dq is not None \
            and w_dq.op_type == "DequantizeLinear" else None
        strides = list(attrs.get("strides", [1, 1]))
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        if codes is None or codes.dtype != np.int8 or codes.ndim != 4 \
                or codes.shape[2] != codes.shape[3] or len(set(strides)) != 1 \
                or len(set(pads)) != 1 or list(attrs.get("dilations", [1, 1])) != [1, 1] \
                or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            return False
        big = np.repeat(np.repeat(codes, k, axis=2), k, axis=3)
        name = f"{conv.name}/pooled_w"
        _const(model, f"{name}_codes", big)
        model.set_tensor_datatype(f"{name}_codes", DataType["INT8"])
        s_w = np.asarray(model.get_initializer(w_dq.input[1]), np.float32)
        scale = _const(model, f"{name}_scale", (s_w / np.float32(k * k)).astype(np.float32))
        axis = {k: v for k, v in _attrs(w_dq).items() if k == "axis"}  # per channel
        dq = helper.make_node("DequantizeLinear", [f"{name}_codes", scale], [name],
                              name=f"{conv.name}/pooled_weights", **axis)
        kk = codes.shape[2]
        new = helper.make_node("Conv", [pool.input[0], name, *conv.input[2:]], list(conv.output),
                               name=conv.name, group=int(attrs.get("group", 1)),
                               kernel_shape=[kk * k] * 2, strides=[strides[0] * k] * 2,
                               pads=[pads[0] * k] * 4)
        graph = model.graph
        at = list(graph.node).index(pool)
        graph.node.remove(pool)
        graph.node.remove(conv)
        graph.node.insert(at, new)
        graph.node.insert(at, dq)
        tail = conv.output[0]
        add = _single_consumer(model, tail, ("Add",))  # a bias the export wrote apart
        q, out_codes = _quantizer_after(model, add.output[0] if add is not None else tail)
        a_dq = model.find_producer(pool.input[0])
        if q is not None:
            s_a = float(np.asarray(model.get_initializer(a_dq.input[1])).reshape(-1)[0])
            s_y = float(np.asarray(model.get_initializer(q.input[1])).reshape(-1)[0])
            colsum = np.abs(codes.astype(np.float64)).reshape(codes.shape[0], -1).sum(axis=1)
            b = model.get_initializer(conv.input[2]) if len(conv.input) > 2 else None
            peak = 255 * s_a * float(np.max(s_w)) * float(np.max(colsum)) \
                + (0.0 if b is None else float(np.max(np.abs(b))))
            self.bounds[out_codes] = _float_bound(big[0].size, peak, s_y)
        return True
