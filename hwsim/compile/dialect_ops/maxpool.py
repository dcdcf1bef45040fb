"""``IntMaxPool``: 2-D max pooling of NCHW 8-bit codes (kernel ``maxpool``).

``codes (N, C, H, W) → codes (N, C, OH, OW)``, the same element type: output pixel
``(oy, ox)`` of channel ``c`` is the largest code of channel ``c`` over the square window
``kernel_size × kernel_size`` at ``(oy·stride − pad, ox·stride − pad)`` (padding never wins).
On the codes of a per-tensor quantizer of positive scale this is exactly ONNX ``MaxPool`` on
the dequantized values (dequantization is monotone). ``signed``: the codes are int8 (1) or
uint8 (0). Golden: :func:`hwsim.golden.common.maxpool.max_pool2d`.
"""

from __future__ import annotations

import numpy as np
from onnx import helper

from hwsim.compile.dialect import _Op
from hwsim.errors import HwsimError
from hwsim.golden.common import maxpool as golden

__all__ = ["IntMaxPool"]


class IntMaxPool(_Op):
    """Max pooling on codes (see the module docstring); golden
    :func:`hwsim.golden.common.maxpool.max_pool2d`."""

    KERNEL = "maxpool"

    def get_nodeattr_types(self):
        return {**super().get_nodeattr_types(),
                "kernel_size": ("i", True, 2),
                "stride": ("i", False, 1),
                "pad": ("i", False, 0),
                "signed": ("i", False, 1)}

    def make_shape_compatible_op(self, model):
        """ONNX ``MaxPool`` on the codes: the same output shape and element type."""
        g = self.get_nodeattr
        k, p = g("kernel_size"), g("pad")
        return helper.make_node("MaxPool", [self.onnx_node.input[0]],
                                [self.onnx_node.output[0]], kernel_shape=[k, k],
                                strides=[g("stride")] * 2, pads=[p] * 4)

    def infer_node_datatype(self, model):
        node = self.onnx_node
        model.set_tensor_datatype(node.output[0], model.get_tensor_datatype(node.input[0]))

    def verify_node(self):
        info = super().verify_node()
        g = self.get_nodeattr
        if g("kernel_size") < 1 or g("stride") < 1 or not 0 <= g("pad") < g("kernel_size"):
            info.append(f"{self.onnx_node.name!r}: needs kernel_size ≥ 1, stride ≥ 1 and "
                        "0 ≤ pad < kernel_size")
        return info

    def execute_node(self, context, graph):
        node = self.onnx_node
        g = self.get_nodeattr
        x = np.asarray(context[node.input[0]])
        if x.ndim != 4:
            raise HwsimError(f"IntMaxPool {node.name!r}: input of shape {x.shape}, not NCHW")
        y = golden.max_pool2d(x, g("kernel_size"), g("stride"), g("pad"))
        context[node.output[0]] = y.astype(x.dtype)
