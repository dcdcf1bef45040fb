"""Back-end handler of ``IntWindowAttention``: the :class:`rtl.dataflow.attention.AttentionNode`
of ``IntAttention`` with a sequence of ``window`` tokens, run once per window (the node clears
its heads after each window's last query and loads the next window's k, v)."""

from __future__ import annotations

import math

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hwsim.errors import HwsimError

from . import Node, handler
from .attention import _attention

#: cycles from a window's last output beat to the next window's first beyond loading its
#: ``w·D`` k, v pairs and the one-window tail: the node's clear state (a measured constant:
#: the compiled AirFM tests compare the composed cycles with the RTL's, ``==``, on windows of
#: 8 × 8 and 16 × 16 codes, one and two blocks)
GAP_EXTRA = 1


@handler("IntWindowAttention")
def _window_attention(model: ModelWrapper, node, opts: dict) -> tuple[Node, list[str]]:
    """The node of one window (``T = w``), ``T_all / w`` times: its q, k, v FIFOs hold the
    whole token stream (no back-pressure reaches the producers, so the schedule's free-flow
    arrival times hold) and so do the skip FIFOs beside it (``sequence`` = all tokens); the
    next window's first output vector ends ``unit_gap = w·D + tail + GAP_EXTRA`` cycles after
    the last one of the window before (clear, k/v load, first query)."""
    op = getCustomOp(node)
    shape = model.get_tensor_shape(node.input[0])
    w, T = op.get_nodeattr("window"), math.prod(int(s) for s in shape[:-1])
    if w < 1 or T % w:
        raise HwsimError(f"node {node.name!r}: windows of {w} tokens do not tile {T} tokens")
    out, names = _attention(model, node, opts)  # one window: params of (window, D)
    D = int(shape[-1])
    out.vectors *= T // w
    out.sequence = T
    out.fifo_depth = {port: T * D + 2 for port in out.fifo_depth}
    out.unit_gap = w * D + out.tail + GAP_EXTRA
    return out, names
