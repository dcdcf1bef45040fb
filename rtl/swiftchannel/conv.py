"""SwiftChannel int8 convolution engine (line buffer, DSP48E2-style MACs, ``ocp`` parallel).

Specification: :mod:`hwsim.golden.swiftchannel.conv` (parameters, cycle formula) and
:func:`hwsim.golden.swiftchannel.network.conv_int` (the function). This module only builds hardware.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.common.lanes import pack_lanes
from hwsim.golden.swiftchannel import conv as spec
from hwsim.golden.swiftchannel.network import MULT_BITS
from quant.qtype import UINT8, Rounding
from rtl.common import adder_tree, round_shift, saturate

__all__ = ["SwiftChannelConv"]


class SwiftChannelConv(wiring.Component):
    """One int8 conv layer of the SwiftChannel student on a streamed image.

    Pixels arrive in raster order on ``x`` (``ic`` uint8 codes per beat) and are written into a
    line buffer of four image rows; ``taps`` taps of the k×k window are read per cycle (one
    read port each) and their ``ic`` codes, centred by the input zero point (0 outside the
    image: zero padding), are multiplied by the int8 weights of ``ocp`` output channels
    (``ic·ocp·taps`` MACs) and summed into ``ocp`` accumulators. After the last tap the int32
    bias is added and each accumulator is requantized by its channel's 16-bit multiplier ``M``
    and shift ``S``, ``clip((acc·M + (z_out << S) + 2**(S−1)) >> S, 0, 255)`` (one
    accumulator × 16-bit product per lane), and sent on ``y``. The requantizer is combinational
    in the output stage, so the latency is the power-of-two engine's.

    Latency and throughput (:mod:`hwsim.golden.swiftchannel.conv`, no stalls): a frame of
    ``H·W`` pixels takes ``start + H·W·(oc/ocp)·(k²/taps) + 3`` cycles from its first ``x``
    beat to its last ``y`` beat, where ``start = W + 2`` for k = 3 (the window of pixel 0 is
    complete) and 1 for k = 1; a pixel costs ``(k²/taps)·oc/ocp`` cycles. ``y`` back-pressure stalls the MACs;
    the input runs at most three rows ahead.

    Members
    -------
    x : ``In(stream.Signature(ArrayLayout(unsigned(8), ic)))``
        One input pixel per beat, raster order (row by row, left to right): its ``ic`` uint8
        channel codes, channel 0 lowest; ``H·W`` beats per frame.
    y : ``Out(stream.Signature(ArrayLayout(unsigned(8), ocp)))``
        ``H·W·oc/ocp`` beats per frame, pixel-major in raster order: beat ``pix·(oc/ocp) + g``
        carries output channels ``g·ocp … (g+1)·ocp − 1`` of pixel ``pix`` (uint8 codes, lane 0
        lowest).
    """

    def __init__(self, params: spec.ConvEngineParams):
        if not isinstance(params, spec.ConvEngineParams):
            raise HwsimError(f"SwiftChannelConv needs ConvEngineParams, not {type(params).__name__}")
        self.params = p = params
        super().__init__({
            "x": In(stream.Signature(data.ArrayLayout(unsigned(8), p.ic))),
            "y": Out(stream.Signature(data.ArrayLayout(unsigned(8), p.ocp))),
        })

    def _roms(self):
        p = self.params
        kk = p.k * p.k
        w = p.weights
        words, biases, rqs = [], [], []
        for g in range(p.groups):
            for step in range(p.steps):
                lanes = [w[((g * p.ocp + l) * p.ic + i) * kk + step * p.taps + j]
                         for l in range(p.ocp) for j in range(p.taps) for i in range(p.ic)]
                words.append(pack_lanes(lanes, 8))
            biases.append(pack_lanes([p.bias[g * p.ocp + l] for l in range(p.ocp)], 32))
            fields = [p.mults[g * p.ocp + l] | (p.shifts[g * p.ocp + l] << MULT_BITS)
                      for l in range(p.ocp)]
            rqs.append(pack_lanes(fields, MULT_BITS + spec.SHIFT_BITS))
        return words, biases, rqs

    def elaborate(self, platform):
        p = self.params
        m = Module()
        W, P = p.width, p.pixels
        ew = MULT_BITS + spec.SHIFT_BITS  # one requantizer ROM field: M, then S

        words, biases, rqs = self._roms()
        lbuf = Memory(shape=unsigned(8 * p.ic), depth=spec.LINE_ROWS * W, init=[])
        wrom = Memory(shape=unsigned(8 * p.ic * p.ocp * p.taps), depth=len(words), init=words)
        brom = Memory(shape=unsigned(32 * p.ocp), depth=p.groups, init=biases)
        erom = Memory(shape=unsigned(ew * p.ocp), depth=p.groups, init=rqs)
        m.submodules.lbuf, m.submodules.wrom = lbuf, wrom
        m.submodules.brom, m.submodules.erom = brom, erom
        l_wr = lbuf.write_port()
        l_rds = [lbuf.read_port() for _ in range(p.taps)]
        w_rd, b_rd, e_rd = wrom.read_port(), brom.read_port(), erom.read_port()

        advance = Signal()
        m.d.comb += advance.eq(~self.y.valid | self.y.ready)

        # ---- input side: raster pixels into the line buffer --------------------------------
        n_in = Signal(range(P + 1))
        in_row = Signal(range(p.height + 1))
        in_col = Signal(range(W))
        c_row = Signal(range(p.height + 1))
        room = (n_in < P) & (in_row < c_row + (spec.LINE_ROWS - 1))
        m.d.comb += [
            self.x.ready.eq(room),
            l_wr.addr.eq(in_row[:2] * W + in_col),
            l_wr.data.eq(self.x.payload.as_value()),
            l_wr.en.eq(self.x.valid & room),
        ]

        # ---- compute side: (pixel, group, step) counters; a step issues ``taps`` taps ---------
        steps = p.steps
        c_col = Signal(range(W))
        c_pix = Signal(range(P))
        grp = Signal(range(max(p.groups, 2)))
        tap = Signal(range(max(steps, 2)))
        need = Signal(range(P + W + 2))
        if p.k == 3:
            m.d.comb += need.eq(Mux(c_pix + W + 1 > P - 1, P - 1, c_pix + W + 1))
        else:
            m.d.comb += need.eq(c_pix)
        issue = Signal()
        m.d.comb += issue.eq(advance & (n_in > need))

        half = p.k // 2
        insides = []
        for j, l_rd in enumerate(l_rds):
            # window offsets of tap ``step·taps + j`` (constant tables indexed by the step)
            dys = [(s * p.taps + j) // p.k for s in range(steps)]
            dxs = [(s * p.taps + j) % p.k for s in range(steps)]
            ty = Signal(range(max(p.k, 2)), name=f"ty{j}")
            tx = Signal(range(max(p.k, 2)), name=f"tx{j}")
            with m.Switch(tap):
                for s_, (dy, dx) in enumerate(zip(dys, dxs, strict=True)):
                    with m.Case(s_):
                        m.d.comb += [ty.eq(dy), tx.eq(dx)]
            r = Signal(signed(len(c_row) + 2), name=f"r{j}")
            c = Signal(signed(len(c_col) + 2), name=f"c{j}")
            inside = Signal(name=f"inside{j}")
            m.d.comb += [
                r.eq(c_row + ty - half),
                c.eq(c_col + tx - half),
                inside.eq((r >= 0) & (r < p.height) & (c >= 0) & (c < W)),
                l_rd.addr.eq(r[:2] * W + c[:len(c_col)]),
                l_rd.en.eq(advance),
            ]
            insides.append(inside)
        m.d.comb += [
            w_rd.addr.eq(grp * steps + tap),
            w_rd.en.eq(advance),
            b_rd.addr.eq(grp),
            b_rd.en.eq(advance),
            e_rd.addr.eq(grp),
            e_rd.en.eq(advance),
        ]

        last_tap = tap == steps - 1
        last_grp = grp == p.groups - 1
        last_pix = c_pix == P - 1
        with m.If(issue):
            m.d.sync += tap.eq(Mux(last_tap, 0, tap + 1))
            with m.If(last_tap):
                m.d.sync += grp.eq(Mux(last_grp, 0, grp + 1))
                with m.If(last_grp):
                    m.d.sync += [c_pix.eq(Mux(last_pix, 0, c_pix + 1)),
                                 c_col.eq(Mux(c_col == W - 1, 0, c_col + 1))]
                    with m.If(c_col == W - 1):
                        m.d.sync += c_row.eq(c_row + 1)
        # input counters (a frame ends when its last tap issues; the input is idle by then)
        frame_end = issue & last_tap & last_grp & last_pix
        with m.If(frame_end):
            m.d.sync += [c_row.eq(0), n_in.eq(0), in_row.eq(0), in_col.eq(0)]
        with m.Elif(self.x.valid & room):
            m.d.sync += [n_in.eq(n_in + 1), in_col.eq(Mux(in_col == W - 1, 0, in_col + 1))]
            with m.If(in_col == W - 1):
                m.d.sync += in_row.eq(in_row + 1)

        # ---- stage 1: line-buffer and ROM outputs → MACs → accumulate ----------------------
        s1_valid, s1_first, s1_last = Signal(), Signal(), Signal()
        s1_inside = [Signal(name=f"s1_inside{j}") for j in range(p.taps)]
        with m.If(advance):
            m.d.sync += [s1_valid.eq(issue), s1_first.eq(tap == 0), s1_last.eq(last_tap)]
            m.d.sync += [a.eq(b) for a, b in zip(s1_inside, insides, strict=True)]

        xs = []  # xs[j][i]: channel i of tap j, centred (0 outside the image)
        for j, l_rd in enumerate(l_rds):
            row = []
            for i in range(p.ic):
                xi = Signal(signed(10), name=f"xc{j}_{i}")
                m.d.comb += xi.eq(Mux(s1_inside[j], l_rd.data[8 * i: 8 * i + 8] - p.z_in, 0))
                row.append(xi)
            xs.append(row)
        s2_valid = Signal()
        s2_acc, s2_l, s2_s = [], [], []
        for l in range(p.ocp):
            prods = []
            for j in range(p.taps):
                for i in range(p.ic):
                    o = 8 * ((l * p.taps + j) * p.ic + i)
                    wv = w_rd.data[o: o + 8].as_signed()
                    prod = Signal(signed(18), name=f"mac{l}_{j}_{i}")
                    m.d.comb += prod.eq(xs[j][i] * wv)
                    prods.append(prod)
            tree = Signal(signed(p.acc_width), name=f"tree{l}")
            m.d.comb += tree.eq(adder_tree(prods))
            acc = Signal(signed(p.acc_width), name=f"acc{l}")
            acc_next = Signal(signed(p.acc_width), name=f"acc_next{l}")
            m.d.comb += acc_next.eq(Mux(s1_first, tree, acc + tree))
            a2 = Signal(signed(p.acc_width + 1), name=f"s2_acc{l}")
            l2 = Signal(MULT_BITS, name=f"s2_mult{l}")
            s2 = Signal(spec.SHIFT_BITS, name=f"s2_shift{l}")
            bias = b_rd.data[32 * l: 32 * l + 32].as_signed()
            ef = e_rd.data[ew * l: ew * (l + 1)]
            with m.If(advance & s1_valid):
                m.d.sync += acc.eq(acc_next)
                with m.If(s1_last):
                    m.d.sync += [a2.eq(acc_next + bias), l2.eq(ef[:MULT_BITS]),
                                 s2.eq(ef[MULT_BITS:])]
            s2_acc.append(a2)
            s2_l.append(l2)
            s2_s.append(s2)
        with m.If(advance):
            m.d.sync += s2_valid.eq(s1_valid & s1_last)
        if p.groups == 1:  # one channel per lane: M and S are elaboration constants (ints)
            s2_l, s2_s = list(p.mults), list(p.shifts)

        # ---- stage 2: requantize → output register -----------------------------------------
        with m.If(advance):
            m.d.sync += self.y.valid.eq(s2_valid)
            with m.If(s2_valid):
                for l in range(p.ocp):
                    if isinstance(s2_s[l], int):  # a constant shift: half up is + 2**(S−1)
                        sh = s2_s[l]
                        v = s2_acc[l] * s2_l[l] + ((p.z_out << sh) + ((1 << sh) >> 1))
                        q = v >> sh  # arithmetic: floor
                    else:
                        v = s2_acc[l] * s2_l[l] + (Const(p.z_out, 9) << s2_s[l])
                        q = round_shift(v, s2_s[l], Rounding.HALF_UP)
                    m.d.sync += self.y.payload[l].eq(saturate(q, UINT8))
        return m
