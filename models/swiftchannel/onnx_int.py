"""Integer ONNX graphs of the int8 SwiftChannel student, bit-exact with the golden.

A float QDQ graph cannot reproduce multiplier requantizers code for code, so the graph is built
from integer ops (:func:`build_graph`): per conv ``Pad`` with the input zero point (zero in the
real domain), ``ConvInteger`` (uint8 × int8 → int32), ``Cast`` to int64, ``Add`` the bias,
``Mul`` by ``M`` and ``Add`` ``(zp << S) + 2**(S−1)``; the rounding shift is ``Clip`` at 0 (a
negative value would clip to code 0 anyway), ``Cast`` to uint64, ``BitShift`` right (a floor),
``Clip`` to 255. The SPAB gate (fused): the wide skip sum with its two multipliers, the LUT
index (``floor`` made a right shift of a non-negative value by an offset), ``Gather`` from the
512-entry LUT constant, sum × gate code and one requantizer with the sum's shift. The
PixelShuffle is ``Reshape``/``Transpose``.
Every requantizer formula is :func:`hwsim.golden.swiftchannel.network.requant_mult`'s.

Two files (both pass :func:`quant.onnx.check`, written by :func:`quant.onnx.save`):

* ``int8.qcdq.onnx`` (onnxruntime, batch size dynamic): float LS input → ``QuantizeLinear``
  (``s_in``, ``z_in``) → integer core → outputs ``y_codes`` (uint8) and ``y``
  (``DequantizeLinear``);
* ``int8.qonnx.onnx`` (qonnx ``execute_onnx``): the integer core on uint8 input codes of one
  sample (batch 1: qonnx's executor needs static shapes) → ``y_codes``.

Contract (``tests/models/test_swiftchannel_onnx.py``): ``y_codes`` of both ``==``
:func:`hwsim.golden.swiftchannel.network.swiftchannel_int` on the same input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hwsim.golden.swiftchannel import network as gold
from quant.onnx import qonnx_executor, run_onnxruntime, save

__all__ = ["export_int_onnx", "run_qcdq_codes", "run_qonnx_codes"]

_OPSET = 13


class _Builder:
    def __init__(self):
        self.nodes, self.inits, self._n = [], [], 0

    def name(self, base: str) -> str:
        self._n += 1
        return f"{base}_{self._n}"

    def const(self, value, dtype, base="c") -> str:
        from onnx import numpy_helper

        n = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), n))
        return n

    def op(self, op_type: str, inputs: list[str], base: str | None = None, **attrs) -> str:
        from onnx import helper

        out = self.name(base or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def cast(self, x: str, to) -> str:
        return self.op("Cast", [x], to=to)

    def requant(self, acc: str, mult, shift, zp: int, chan_shape=None) -> str:
        """``clip((acc·M + (zp << S) + 2**(S−1)) >> S, 0, 255)`` on int64 ``acc`` → int64 codes."""
        from onnx import TensorProto

        m = np.asarray(mult, np.int64)
        s = np.asarray(shift, np.int64)
        add = (np.int64(zp) << s) + np.where(s > 0, np.int64(1) << np.maximum(s - 1, 0), 0)
        shp = chan_shape or ()
        v = self.op("Add", [self.op("Mul", [acc, self.const(m.reshape(shp), np.int64, "M")]),
                            self.const(add.reshape(shp), np.int64, "zp_half")])
        v = self.op("Max", [v, self.const(0, np.int64, "zero")])  # negative → code 0 anyway
        v = self.op("BitShift", [self.cast(v, TensorProto.UINT64),
                                 self.const(s.reshape(shp), np.uint64, "S")], direction="RIGHT")
        v = self.op("Min", [v, self.const(255, np.uint64, "top")])
        return self.cast(v, TensorProto.INT64)

    def conv(self, codes: str, c: gold.ConvInt) -> str:
        """int64 codes (n, ic, H, W) → requantized int64 codes (n, oc, H, W)."""
        from onnx import TensorProto

        p = c.k // 2
        x8 = self.cast(codes, TensorProto.UINT8)
        if p:
            pads = self.const([0, 0, p, p, 0, 0, p, p], np.int64, "pads")
            x8 = self.op("Pad", [x8, pads, self.const(c.z_in, np.uint8, "pad_value")])
        acc = self.op("ConvInteger", [x8, self.const(c.w, np.int8, "w"),
                                      self.const(c.z_in, np.uint8, "z_in")])
        acc = self.op("Add", [self.cast(acc, TensorProto.INT64),
                              self.const(np.asarray(c.b).reshape(1, -1, 1, 1), np.int64, "b")])
        return self.requant(acc, c.mult, c.shift, c.z_out, chan_shape=(1, -1, 1, 1))

    def centred(self, codes: str, zp: int) -> str:
        return self.op("Sub", [codes, self.const(zp, np.int64, "zp")])

    def spab(self, x: str, b: gold.SpabInt, z_x: int, lut: str) -> str:
        c2 = self.conv(self.conv(x, b.c1), b.c2)
        dc = self.centred(c2, b.c2.z_out)
        # LUT index: floor(dc·M / 2**S) + 256, made a shift of a non-negative value by adding K·2**S
        k = -(-255 * int(b.lut_mult) >> int(b.lut_shift)) + 1
        v = self.op("Add", [self.op("Mul", [dc, self.const(b.lut_mult, np.int64, "lut_M")]),
                            self.const(k << int(b.lut_shift), np.int64, "lut_off")])
        from onnx import TensorProto

        v = self.op("BitShift", [self.cast(v, TensorProto.UINT64),
                                 self.const(b.lut_shift, np.uint64, "lut_S")], direction="RIGHT")
        idx = self.op("Add", [self.cast(v, TensorProto.INT64),
                              self.const(gold.LUT_SIZE // 2 - k, np.int64, "lut_base")])
        idx = self.op("Clip", [idx, self.const(0, np.int64, "lo"),
                               self.const(gold.LUT_SIZE - 1, np.int64, "hi")])
        g = self.op("Gather", [lut, idx], axis=0)
        acc = self.op("Add", [
            self.op("Mul", [self.centred(x, z_x), self.const(b.sum_mult_x, np.int64, "Mx")]),
            self.op("Mul", [dc, self.const(b.sum_mult_c, np.int64, "Mc")])])
        # the fused gate: the wide sum times the gate code, one requantizer
        return self.requant(self.op("Mul", [acc, g]), 1, b.sum_shift, b.z_out)


def build_graph(m: gold.IntModel, rows: int, cols: int, float_io: bool, batch: int | None = None):
    """The integer graph of ``m`` on (n, 2, rows, cols) inputs: float LS values (batch ``n``
    dynamic, or ``batch``) or uint8 codes (batch 1: qonnx's executor needs static shapes)."""
    from onnx import TensorProto, helper

    bld = _Builder()
    c_out = 2
    n = (batch or "n") if float_io else 1
    if float_io:
        xin = helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, 2, rows, cols])
        q = bld.op("QuantizeLinear", ["x", bld.const(np.float32(m.s_in), np.float32, "s_in"),
                                      bld.const(m.z_in, np.uint8, "z_in")])
    else:
        xin = helper.make_tensor_value_info("x_codes", TensorProto.UINT8, [n, 2, rows, cols])
        q = "x_codes"
    y = bld.cast(q, TensorProto.INT64)
    lut = bld.const(m.lut, np.int64, "lut")
    y, z = bld.conv(y, m.head), m.head.z_out
    for b in m.blocks:
        y, z = bld.spab(y, b, z, lut), b.z_out
    y = bld.conv(bld.conv(y, m.tail), m.up)
    # PixelShuffle: (n, C·rf·rs, H, W) → (n, C, rf·H, rs·W)
    rf, rs = m.rf, m.rs
    y = bld.op("Reshape", [y, bld.const([0, c_out, rf, rs, rows, cols], np.int64, "shape")])
    y = bld.op("Transpose", [y], perm=[0, 1, 4, 2, 5, 3])
    y = bld.op("Reshape", [y, bld.const([0, c_out, rf * rows, rs * cols], np.int64, "shape")])
    bld.nodes.append(helper.make_node("Cast", [y], ["y_codes"], to=TensorProto.UINT8))
    shape = [n, c_out, rf * rows, rs * cols]
    outs = [helper.make_tensor_value_info("y_codes", TensorProto.UINT8, shape)]
    if float_io:
        bld.nodes.append(helper.make_node(
            "DequantizeLinear", ["y_codes", bld.const(np.float32(m.s_out), np.float32, "s_out"),
                                 bld.const(m.z_out, np.uint8, "z_out")], ["y"]))
        outs.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, shape))
    graph = helper.make_graph(bld.nodes, "swiftchannel_int8", [xin], outs, bld.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)],
                             producer_name="hwsim")


def export_int_onnx(m: gold.IntModel, rows: int, cols: int, folder: Path,
                    batch: int | None = None) -> dict[str, Path]:
    """Write ``int8.qcdq.onnx`` (batch dynamic, or ``batch``: what ``hwsim compile`` takes) and
    ``int8.qonnx.onnx`` of ``m`` into ``folder``."""
    folder = Path(folder)
    return {"qcdq": save(build_graph(m, rows, cols, True, batch), folder / "int8.qcdq.onnx"),
            "qonnx": save(build_graph(m, rows, cols, False), folder / "int8.qonnx.onnx")}


def run_qcdq_codes(path: Path, x: np.ndarray) -> np.ndarray:
    """Output codes of the QCDQ integer graph in onnxruntime on float inputs ``x``."""
    return run_onnxruntime(path, {"x": np.asarray(x, np.float32)}, ["y_codes"])[0] \
        .astype(np.int64)


def run_qonnx_codes(path: Path, x_codes: np.ndarray) -> np.ndarray:
    """Output codes of the integer graph in qonnx's ``execute_onnx`` on uint8 codes (n, 2, r, c),
    one sample per execution."""
    run = qonnx_executor(path)
    x = np.asarray(x_codes, np.uint8)
    return np.concatenate([run({"x_codes": x[i:i + 1]})[0] for i in range(len(x))]) \
        .astype(np.int64)
