"""``IntThreshold``: a float activation between a layer's accumulator and its quantizer
(kernel ``threshold``).

``acc`` (int32 codes, any shape) → 8-bit codes, the same shape: ``y = codes[#{i : acc ≥
breakpoints[i]}]`` with ``breakpoints`` strictly increasing and ``len(codes) =
len(breakpoints) + 1`` (FINN's multi-threshold). ``in_width``: the accumulator width (≤ 32),
``out_signed``: int8 (1) or uint8 (0) output codes, ``function``: the float op the table
stands for (informative). Golden: :func:`hwsim.golden.common.threshold.threshold`.
"""

from __future__ import annotations

import numpy as np
from onnx import helper

from hwsim.compile.dialect import _Op, _qonnx_dtype, code_elem_type
from hwsim.errors import HwsimError
from hwsim.golden.common import threshold as golden

__all__ = ["IntThreshold"]


class IntThreshold(_Op):
    """Multi-threshold on accumulators (see the module docstring)."""

    KERNEL = "threshold"

    def get_nodeattr_types(self):
        return {**super().get_nodeattr_types(),
                "breakpoints": ("ints", False, []),
                "codes": ("ints", True, []),
                "in_width": ("i", False, 32),
                "out_signed": ("i", False, 1),
                "function": ("s", False, "")}

    def params(self, lanes: int = 1) -> golden.ThresholdParams:
        """The kernel's parameters (raises :class:`HwsimError` on a bad table)."""
        g = self.get_nodeattr
        return golden.ThresholdParams(lanes=lanes, in_bits=g("in_width"),
                                      out_signed=bool(g("out_signed")),
                                      breakpoints=tuple(g("breakpoints")), codes=tuple(g("codes")))

    def make_shape_compatible_op(self, model):
        """``Cast`` to the code element type: the same shape and the output type."""
        return helper.make_node("Cast", [self.onnx_node.input[0]], [self.onnx_node.output[0]],
                                to=code_elem_type(8, self.get_nodeattr("out_signed")))

    def infer_node_datatype(self, model):
        model.set_tensor_datatype(self.onnx_node.output[0],
                                  _qonnx_dtype(8, self.get_nodeattr("out_signed")))

    def verify_node(self):
        info = super().verify_node()
        try:
            self.params()
        except HwsimError as e:
            info.append(f"{self.onnx_node.name!r}: {e}")
        return info

    def execute_node(self, context, graph):
        node = self.onnx_node
        codes = golden.threshold(np.asarray(context[node.input[0]]), self.params())
        context[node.output[0]] = codes.astype(np.int8 if self.get_nodeattr("out_signed")
                                               else np.uint8)
