"""``StreamFlatten``: the flatten of a code tensor into ``(N, rest)`` vectors, in the order the
dataflow design streams it (data movement only: no kernel).

``y = transpose(x, perm).reshape(N, -1)``: with ``perm`` the identity this is ONNX
``Flatten(axis=1)``; with ``perm = (0, 2, 3, 1)`` an NCHW tensor of a graph with convolutions
is flattened in the NHWC order its pixels stream in, and the lowering
(:class:`~hwsim.compile.lower.flatten.OrderFlatten`) permuted the rows of the weight matrix
that reads it to match (FINN's way: no reorder buffer). The back end lets the reading
matrix–vector unit take the producer's stream directly.
"""

from __future__ import annotations

import numpy as np
from onnx import helper

from hwsim.compile.dialect import _Op

__all__ = ["StreamFlatten"]


class StreamFlatten(_Op):
    """``transpose(x, perm).reshape(N, -1)`` of int8/uint8 codes (see the module docstring)."""

    def get_nodeattr_types(self):
        return {**super().get_nodeattr_types(), "perm": ("ints", True, [])}

    def make_shape_compatible_op(self, model):
        """``Flatten(axis=1)``: the same shape and element type."""
        return helper.make_node("Flatten", [self.onnx_node.input[0]],
                                [self.onnx_node.output[0]], axis=1)

    def infer_node_datatype(self, model):
        model.set_tensor_datatype(self.onnx_node.output[0],
                                  model.get_tensor_datatype(self.onnx_node.input[0]))

    def verify_node(self):
        info = super().verify_node()
        perm = list(self.get_nodeattr("perm"))
        if sorted(perm) != list(range(len(perm))) or not perm or perm[0] != 0:
            info.append(f"{self.onnx_node.name!r}: perm {perm} must be a permutation that "
                        "keeps axis 0 first")
        return info

    def execute_node(self, context, graph):
        node = self.onnx_node
        x = np.asarray(context[node.input[0]])
        context[node.output[0]] = np.ascontiguousarray(
            x.transpose(self.get_nodeattr("perm"))).reshape(x.shape[0], -1)
