"""``IntLifArray``: one time step of a layer of integer LIF neurons (kernel ``lif-array``).

``(x, v, W) → (spikes, v')``: ``x`` (B, …) non-negative event counts (uint8: frame pixels,
or the 0/1 spikes of a layer before), flattened per batch row into input addresses; ``v``
(B, N) int16 membrane codes; ``W`` (N, M) signed weight codes (an initializer). Each row is
one step of :func:`hwsim.golden.snn.lif_array.lif_array` with ``v0 = v``: address ``a``
occurs ``x[a]`` times among the step's events, ``I = Σ W[:, e]``, the ``mul`` leak with
``half_up`` rounding, saturation to ``mem_bits``, ``s = u > θ``, subtractive reset. The
attributes ``state_in`` / ``state_out`` name the graph input and output that carry ``v``
and ``v'`` between time steps (the membrane state pair).
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from hwsim.compile.dialect import _Op, _qonnx_dtype
from hwsim.errors import HwsimError
from hwsim.golden.snn import lif_array as golden

__all__ = ["IntLifArray"]


class IntLifArray(_Op):
    """One LIF step per batch row (see the module docstring); golden
    :func:`hwsim.golden.snn.lif_array.lif_array`."""

    KERNEL = "lif-array"
    N_INPUTS = (3,)

    def get_nodeattr_types(self):
        return {**super().get_nodeattr_types(),
                "threshold": ("i", True, 1),
                "leak_mult": ("i", True, 0),
                "leak_frac": ("i", True, 8),
                "mem_bits": ("i", True, 16),
                "weight_bits": ("i", True, 8),
                "state_in": ("s", False, ""),
                "state_out": ("s", False, "")}

    def params(self, weights_shape, lanes: int = 1) -> golden.LifParams:
        g = self.get_nodeattr
        n, m = (int(d) for d in weights_shape)
        return golden.LifParams(
            neurons=n, inputs=m, lanes=lanes, weight_bits=g("weight_bits"),
            mem_bits=g("mem_bits"), threshold=g("threshold"), leak_mult=g("leak_mult"),
            leak_frac=g("leak_frac"), leak_rounding="half_up")

    def make_shape_compatible_op(self, model):
        """Two outputs of ``v``'s shape: ``Identity`` gives ``v'``; the spikes' (uint8) value
        info is written here (a shape-compatible op is one node)."""
        s = self.onnx_node.output[0]
        if not any(vi.name == s for vi in model.graph.value_info):
            model.graph.value_info.append(helper.make_tensor_value_info(
                s, TensorProto.UINT8, model.get_tensor_shape(self.onnx_node.input[1])))
        return helper.make_node("Identity", [self.onnx_node.input[1]],
                                [self.onnx_node.output[1]])

    def infer_node_datatype(self, model):
        node = self.onnx_node
        model.set_tensor_datatype(node.output[0], _qonnx_dtype(8, False))
        model.set_tensor_datatype(node.output[1], _qonnx_dtype(self.get_nodeattr("mem_bits"),
                                                               True))

    def verify_node(self):
        info = super().verify_node()
        if len(self.onnx_node.output) != 2:
            info.append(f"IntLifArray {self.onnx_node.name!r} needs 2 outputs (spikes, v')")
        return info

    def execute_node(self, context, graph):
        node = self.onnx_node
        w = np.asarray(context[node.input[2]]).astype(np.int64)
        p = self.params(w.shape)
        x = np.asarray(context[node.input[0]]).astype(np.int64)
        v = np.asarray(context[node.input[1]]).astype(np.int64)
        x = x.reshape(x.shape[0], -1)
        if x.shape[1] != p.inputs or v.shape != (x.shape[0], p.neurons):
            raise HwsimError(f"IntLifArray {node.name!r}: inputs {x.shape}, membranes "
                             f"{v.shape} do not fit weights {w.shape}")
        spikes, mems = [], []
        for row, v0 in zip(x, v, strict=True):
            s, vn = golden.lif_array(w, golden.events_from_counts(row[None]), p, v0=v0)
            spikes.append(s[0])
            mems.append(vn[0])
        context[node.output[0]] = np.array(spikes, np.uint8).reshape(v.shape)
        context[node.output[1]] = np.array(mems, np.int16).reshape(v.shape)

