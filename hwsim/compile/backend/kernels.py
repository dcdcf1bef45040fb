"""Back-end handlers: one function per dialect op, giving the :class:`~hwsim.compile.backend.Node`
of the registry kernel that implements it (params, baked-in contents, ports, timing)."""

from __future__ import annotations

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hwsim.errors import HwsimError

from . import Node, _consumers, _double_buffer, _lanes, _vectors, handler, stream_dims


@handler("IntMatMul")
def _matmul(model: ModelWrapper, node, opts: dict) -> tuple[Node, list[str]]:
    w = model.get_initializer(node.input[1])
    if w is None:
        raise HwsimError(f"node {node.name!r}: weights are not constant")
    bias = model.get_initializer(node.input[2]) if len(node.input) == 3 else None
    shape = model.get_tensor_shape(node.input[0])
    if len(shape) in (3, 4) and stream_dims(model, node.input[0])[1] != shape[-1]:
        raise HwsimError(f"node {node.name!r}: a matrix product on a 4-D tensor in a graph "
                         "with convolutions (streamed as NHWC) is not built")
    lanes = _lanes(w.shape[0], opts["max_lanes"])
    out = mvu_node(model, node, np.asarray(w), bias, node.input[0], lanes, _vectors(shape),
                   bool(getCustomOp(node).get_nodeattr("a_signed")))
    return out, out.onnx_nodes


def mvu_node(model: ModelWrapper, node, w: np.ndarray, bias, x: str, lanes: int,
             vectors: int, a_signed: bool, name: str | None = None) -> Node:
    """The ``int8-mvu`` node of a matrix product ``node`` (weights ``w`` ``(cols, rows)``,
    ``bias`` or None) and the one ``Requant`` that reads its accumulators, reading the code
    stream ``x`` with ``lanes`` lanes."""
    from hwsim.golden.common import int8_mvu as mvu_spec
    from hwsim.golden.common.int8_mvu import Int8MvuParams
    users = _consumers(model, node.output[0])
    if len(users) != 1 or users[0].op_type != "Requant":
        raise HwsimError(f"node {node.name!r}: the back end needs its accumulators read by one "
                         "Requant")
    rq = getCustomOp(users[0])
    out_bits = rq.get_nodeattr("width")
    if out_bits not in (8, 32) or rq.get_nodeattr("narrow"):
        raise HwsimError(f"node {users[0].name!r}: the int8-mvu kernel writes full-range 8-bit "
                         f"or 32-bit codes, not a {rq.get_nodeattr('width')}-bit"
                         f"{' narrow' if rq.get_nodeattr('narrow') else ''} format")
    wide = out_bits == 32  # int32 codes (a float head's accumulators): the graph's output only
    if wide and any(n.op_type not in ("DequantizeLinear", "IntThreshold")
                    for n in _consumers(model, users[0].output[0])):
        raise HwsimError(f"node {users[0].name!r}: 32-bit codes may only leave the design "
                         "(the graph output's DequantizeLinear) or feed an IntThreshold, "
                         "not another node")
    cols, rows = w.shape
    y_signed = bool(rq.get_nodeattr("signed"))
    mult, shift = rq.scales()  # one (M, S), or one per output column (per-channel weights)
    per_row = bool(mult.ndim)
    if per_row and mult.size not in (1, rows):
        raise HwsimError(f"node {users[0].name!r}: {mult.size} multipliers for {rows} outputs")
    mult_bits = max(1, int(np.max(mult)).bit_length())
    params = Int8MvuParams(lanes=lanes, rows=rows, cols=cols, act_signed=a_signed,
                           out_signed=y_signed, relu=bool(rq.get_nodeattr("relu")),
                           zero_point=int(rq.get_nodeattr("zero_point")),
                           bias=bias is not None, rounding=rq.get_nodeattr("rounding"),
                           mult_bits=mult_bits, shift_bits=6, per_row_scale=per_row,
                           out_bits=out_bits)
    init = {"weights": np.asarray(w, np.int64).T}
    if bias is not None:
        init["bias"] = np.asarray(bias, np.int64)
    if per_row:  # each row's (M, S) baked into the kernel's scale memory
        init["row_mult"] = np.broadcast_to(mult, (rows,))
        init["row_shift"] = np.broadcast_to(shift, (rows,))
    constants = {} if per_row else {"mult": int(mult), "shift": int(shift)}
    return Node(name=name or node.name, op_type=node.op_type, kernel="int8-mvu", params=params,
                inputs=[("x", x, lanes, a_signed)],
                output=("y", users[0].output[0], 4, False) if wide
                else ("y", users[0].output[0], 1, y_signed),
                wide_output=wide, out_bytes=4 if wide else 1,
                vectors=vectors, init=init,
                constants=constants,
                fifo_depth={"x": cols // lanes + 2},
                onnx_nodes=[node.name, users[0].name],
                tail=params.rows * params.chunks + mvu_spec.PIPELINE_DEPTH,
                interval=mvu_spec.interval_cycles(params), out_len=rows)


@handler("TernaryMatMul")
def _ternary(model: ModelWrapper, node, opts: dict) -> tuple[Node, list[str]]:
    """``TernaryMatMul → Requant``: the ``ternary-mvu`` kernel where the requantizer is the
    kernel's (one ``M``/``S``, signed 8-bit codes, zero point 0, no ReLU clip); otherwise the weights (−1, 0,
    +1 as int8) go to an ``int8-mvu``, which has the zero point and the clip."""
    from hwsim.golden.vitallm import ternary_mvu as tspec
    users = _consumers(model, node.output[0])
    if len(users) != 1 or users[0].op_type != "Requant":
        raise HwsimError(f"node {node.name!r}: the back end needs its accumulators read by one "
                         "Requant")
    rq = getCustomOp(users[0])
    mult, shift = rq.scales()
    plain = (mult.ndim == 0 and rq.get_nodeattr("width") == 8 and rq.get_nodeattr("signed")
             and not rq.get_nodeattr("narrow") and not rq.get_nodeattr("relu")
             and rq.get_nodeattr("zero_point") == 0
             and rq.get_nodeattr("rounding") == "half_even")
    if not plain:
        return _matmul(model, node, opts)
    w = model.get_initializer(node.input[1])
    if w is None:
        raise HwsimError(f"node {node.name!r}: weights are not constant")
    cols, rows = w.shape
    lanes = _lanes(cols, opts["max_lanes"])
    params = tspec.TernaryMvuParams(lanes=lanes, rows=rows, cols=cols,
                                    mult_bits=max(1, int(mult).bit_length()), shift_bits=6)
    shape = model.get_tensor_shape(node.input[0])
    out = Node(name=node.name, op_type=node.op_type, kernel="ternary-mvu", params=params,
               inputs=[("x", node.input[0], lanes, True)],
               output=("y", users[0].output[0], 1, True), vectors=_vectors(shape),
               init={"weights": np.asarray(w, np.int64).T},
               constants={"mult": int(mult), "shift": int(shift)},
               fifo_depth={"x": _double_buffer(model, node.input[0], lanes)},
               onnx_nodes=[node.name, users[0].name],
               tail=params.rows * params.chunks + tspec.PIPELINE_DEPTH,
               interval=tspec.interval_cycles(params), out_len=rows)
    return out, [node.name, users[0].name]


@handler("LutAct")
def _lut(model: ModelWrapper, node, opts: dict) -> tuple[Node, list[str]]:
    from hwsim.golden.common import lut_act as lut_spec
    op = getCustomOp(node)
    params = op.params(1)  # one code per beat: what an MVU writes, at the rate it writes it
    vectors, n = stream_dims(model, node.input[0])
    out = Node(name=node.name, op_type=node.op_type, kernel="lut-act", params=params,
               inputs=[("x", node.input[0], 1, params.in_signed)],
               output=("y", node.output[0], 1, params.out_signed), vectors=vectors,
               onnx_nodes=[node.name], tail=lut_spec.latency_cycles(params), interval=n,
               out_len=n, calls_per_vector=n)
    return out, [node.name]


@handler("IntEltwise")
def _eltwise(model: ModelWrapper, node, opts: dict) -> tuple[Node, list[str]]:
    import dataclasses

    from hwsim.golden.common import eltwise as elt_spec
    a, b = node.input[0], node.input[1]
    shape = model.get_tensor_shape(a)
    if list(model.get_tensor_shape(b)) != list(shape):
        raise HwsimError(f"node {node.name!r}: the eltwise kernel pairs equal-shape operands; "
                         f"{b!r} has shape {model.get_tensor_shape(b)}, {a!r} {shape}")
    params = dataclasses.replace(getCustomOp(node).params(), lanes=1)
    if params.out_narrow:
        raise HwsimError(f"node {node.name!r}: the eltwise kernel writes full-range codes, "
                         "not a narrow format")
    vectors, n = stream_dims(model, a)
    # an operand that also feeds another node waits here while that branch computes: its
    # FIFO holds two whole vectors
    depth = {"a": 2 * n + 4, "b": 2 * n + 4}
    out = Node(name=node.name, op_type=node.op_type, kernel="eltwise", params=params,
               inputs=[("a", a, 1, params.a_signed), ("b", b, 1, params.b_signed)],
               output=("y", node.output[0], 1, params.out_signed), vectors=vectors,
               fifo_depth=depth, onnx_nodes=[node.name],
               tail=elt_spec.latency_cycles(params), interval=n, out_len=n,
               calls_per_vector=n)
    return out, [node.name]
