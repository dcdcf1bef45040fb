"""Back-end handler of ``IntWindowAttention``: the :class:`rtl.dataflow.attention.AttentionNode`
of ``IntAttention`` with a sequence of ``window`` tokens, run once per window (the node clears
its heads after each sequence, so the windows follow each other on the same streams)."""

from __future__ import annotations

import math

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hwsim.errors import HwsimError

from . import Node, handler
from .attention import _attention


@handler("IntWindowAttention")
def _window_attention(model: ModelWrapper, node, opts: dict) -> tuple[Node, list[str]]:
    op = getCustomOp(node)
    shape = model.get_tensor_shape(node.input[0])
    w, T = op.get_nodeattr("window"), math.prod(int(s) for s in shape[:-1])
    if w < 1 or T % w:
        raise HwsimError(f"node {node.name!r}: windows of {w} tokens do not tile {T} tokens")
    out, names = _attention(model, node, opts)  # one window: params of (window, D)
    out.kernel = "attention-head"
    out.vectors = out.vectors * (T // w)
    return out, names
