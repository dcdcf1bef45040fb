"""The exact step that runs 2-D max pooling on codes: ``DequantizeLinear → MaxPool`` becomes
``IntMaxPool → DequantizeLinear``."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper
from qonnx.transformation.base import Transformation

from hwsim.compile import dialect
from hwsim.errors import HwsimError

from ._graph import _refresh, _remove_dead_nodes, _replace
from .pointwise import _elem_type

__all__ = ["LowerMaxPool"]


class LowerMaxPool(Transformation):
    """Exact: a ``MaxPool`` reading a ``DequantizeLinear`` of 8-bit codes with a per-tensor
    scale > 0 becomes ``IntMaxPool`` on the codes, then the same ``DequantizeLinear``.

    Dequantization ``(c − z) · s`` with ``s > 0`` is monotone, so the maximum of the
    dequantized window is the dequantized maximum code: the graph outputs stay ``==``. Lowered
    forms: 2-D (NCHW), a square kernel, equal strides, the same explicit padding on every side
    (``pad < kernel``), no dilation, ``ceil_mode`` 0, no ``Indices`` output; any other
    ``MaxPool`` raises :class:`~hwsim.errors.HwsimError` naming the node.
    """

    exact = True

    def apply(self, model):
        for node in [n for n in model.graph.node if n.op_type == "MaxPool"]:
            self._lower(model, node)
        _remove_dead_nodes(model)
        return _refresh(model), False

    @staticmethod
    def _lower(model, node) -> None:
        def fail(why):
            raise HwsimError(f"cannot lower MaxPool node {node.name!r}: {why}")

        if len(node.output) > 1 and node.output[1]:
            fail("its Indices output is not supported")
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        kernel = list(attrs.get("kernel_shape", []))
        strides = list(attrs.get("strides", [1] * len(kernel)))
        pads = list(attrs.get("pads", [0] * 2 * len(kernel)))
        auto_pad = attrs.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        shape = model.get_tensor_shape(node.input[0]) or []
        if len(kernel) != 2 or len(shape) != 4:
            fail(f"only 2-D pooling of NCHW tensors is lowered (kernel_shape {kernel})")
        if kernel[0] != kernel[1]:
            fail(f"only square kernels are lowered (kernel_shape {kernel})")
        if any(d != 1 for d in attrs.get("dilations", [1, 1])):
            fail(f"dilation {list(attrs['dilations'])} is not supported")
        if attrs.get("ceil_mode", 0):
            fail("ceil_mode 1 is not supported (only floor: ceil_mode 0)")
        if auto_pad not in ("NOTSET", "VALID"):
            fail(f"auto_pad {auto_pad} is not supported (give explicit pads)")
        if auto_pad == "VALID":
            pads = [0, 0, 0, 0]
        if len(set(strides)) != 1 or len(set(pads)) != 1:
            fail(f"only equal strides and the same padding on every side are lowered "
                 f"(strides {strides}, pads {pads})")
        k, s, pad = int(kernel[0]), int(strides[0]), int(pads[0])
        if not 0 <= pad < k:
            fail(f"pad {pad} outside 0 … kernel − 1")
        dq = model.find_producer(node.input[0])
        if dq is None or dq.op_type != "DequantizeLinear":
            fail("its input is not a quantized tensor (no DequantizeLinear before it)")
        scale = model.get_initializer(dq.input[1])
        zero = model.get_initializer(dq.input[2]) if len(dq.input) > 2 and dq.input[2] else 0
        if scale is None or np.asarray(scale).size != 1 or np.asarray(zero).size != 1:
            fail("its input quantizer is not per-tensor with constant scale and zero point")
        if not float(np.asarray(scale).reshape(())) > 0:
            fail("its input quantizer's scale is not positive")
        elem = _elem_type(model, dq.input[0])
        if elem not in (TensorProto.INT8, TensorProto.UINT8):
            fail("its input codes are not int8/uint8")
        pooled = f"{node.name}/codes"
        pool = helper.make_node("IntMaxPool", [dq.input[0]], [pooled], domain=dialect.DOMAIN,
                                name=f"{node.name}/int", kernel=dialect.IntMaxPool.KERNEL,
                                kernel_size=k, stride=s, pad=pad,
                                signed=int(elem == TensorProto.INT8))
        deq = helper.make_node("DequantizeLinear", [pooled, *dq.input[1:]], [node.output[0]],
                               name=f"{node.name}/dequant")
        _replace(model, [node], [pool, deq])
