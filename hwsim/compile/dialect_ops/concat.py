"""``IntConcat``: two code tensors with one quantizer joined along one axis (kernel ``concat``).

``(a, b) → y``: int8/uint8 codes of the same format (``signed``) and the same shape but on
``axis``; ``y`` holds ``a``'s codes then ``b``'s along ``axis`` (any axis: the back end
builds the one its stream order makes the vector axis). Golden:
:func:`hwsim.golden.common.concat.concat` on the tensors with ``axis`` moved last.
"""

from __future__ import annotations

import numpy as np
from onnx import helper

from hwsim.compile.dialect import _Op, _qonnx_dtype
from hwsim.errors import HwsimError
from hwsim.golden.common import concat as golden

__all__ = ["IntConcat"]


class IntConcat(_Op):
    """``y = concat(a, b, axis)`` of two code tensors in one format; golden
    :func:`hwsim.golden.common.concat.concat`."""

    KERNEL = "concat"
    N_INPUTS = (2,)

    def get_nodeattr_types(self):
        return {**super().get_nodeattr_types(),
                "axis": ("i", False, -1),
                "signed": ("i", False, 1)}

    def params(self, len_a: int, len_b: int, lanes: int = 1) -> golden.ConcatParams:
        """The kernel's parameters for vectors of ``len_a`` and ``len_b`` codes."""
        return golden.ConcatParams(lanes=lanes, len_a=int(len_a), len_b=int(len_b),
                                   signed=bool(self.get_nodeattr("signed")))

    def make_shape_compatible_op(self, model):
        """ONNX ``Concat``: the same shape and (the inputs') element type."""
        node = self.onnx_node
        return helper.make_node("Concat", list(node.input), [node.output[0]],
                                axis=self.get_nodeattr("axis"))

    def infer_node_datatype(self, model):
        model.set_tensor_datatype(self.onnx_node.output[0],
                                  _qonnx_dtype(8, self.get_nodeattr("signed")))

    def verify_node(self):
        info = super().verify_node()
        if self.get_nodeattr("signed") not in (0, 1):
            info.append(f"{self.onnx_node.name!r}: signed must be 0 or 1")
        return info

    def execute_node(self, context, graph):
        node = self.onnx_node
        axis = self.get_nodeattr("axis")
        a, b = (np.asarray(context[n]) for n in node.input)
        if a.ndim != b.ndim or not -a.ndim <= axis < a.ndim:
            raise HwsimError(f"IntConcat {node.name!r}: inputs {a.shape} and {b.shape} do not "
                             f"join along axis {axis}")
        a_last, b_last = np.moveaxis(a, axis, -1), np.moveaxis(b, axis, -1)
        y = golden.concat(a_last, b_last, self.params(a_last.shape[-1], b_last.shape[-1]))
        context[node.output[0]] = np.moveaxis(y, -1, axis).astype(
            np.int8 if self.get_nodeattr("signed") else np.uint8)
