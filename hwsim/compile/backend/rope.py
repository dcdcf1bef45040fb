"""Back end of ``IntRotary``: one ``rope`` unit on the token stream, one int8 code per beat.

A vector is a token (``heads · head_dim`` codes); the unit's position counter wraps after the
tables' ``tokens`` rows, so every sequence of the streamed tensor starts at position 0. Timing:
a fixed-latency pipeline, the last output beat of a token ``latency_cycles`` after its last
input beat even with idle input (the second half of the last head drains on its own), one
beat per cycle: ``tail = latency_cycles``, ``interval = heads · head_dim``.
"""

from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hwsim.errors import HwsimError
from hwsim.golden.common import rope as spec

from . import Node, handler, stream_dims


@handler("IntRotary")
def _rope(model: ModelWrapper, node, opts: dict) -> tuple[Node, list[str]]:
    params = getCustomOp(node).params()
    vectors, n = stream_dims(model, node.input[0])
    shape = model.get_tensor_shape(node.input[0])
    if n != params.token_codes or len(shape) < 2 or shape[-2] != params.tokens:
        raise HwsimError(f"node {node.name!r}: a rotary embedding of {params.tokens} tokens × "
                         f"{params.heads}·{params.head_dim} codes streams (…, tokens, "
                         f"heads·head_dim) codes, not {shape}")
    built = Node(name=node.name, op_type=node.op_type, kernel="rope", params=params,
                 inputs=[("x", node.input[0], 1, True)], output=("y", node.output[0], 1, True),
                 vectors=vectors, onnx_nodes=[node.name], tail=spec.latency_cycles(params),
                 interval=spec.interval_cycles(params), out_len=n)
    return built, [node.name]
