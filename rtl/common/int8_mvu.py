"""General int8 matrix–vector unit (the hardware of a quantized ``MatMul``/``Gemm``).

Specification: :mod:`hwsim.golden.common.int8_mvu` (golden function, cycle formulas, weight and
bias word formats). This module only builds the hardware.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.common import int8_mvu as spec
from rtl.common import adder_tree, round_shift, saturate
from rtl.common.booth import multiply

__all__ = ["Int8MVU"]


class Int8MVU(wiring.Component):
    """``y = requant(W · x + bias)``: int8 weights in on-chip memory, int8/uint8 vectors
    streamed through.

    Each cycle one word of ``lanes`` int8 weights (row ``r``, columns ``k·lanes …``) and the
    matching ``lanes`` activations are read; ``lanes`` multipliers (``*``, DSP style) form the
    products, an adder tree sums them and the row accumulator (exact, ``acc_width`` bits) adds
    the tree's sum, starting from the row's bias where ``params.bias``. After ``cols/lanes``
    cycles the accumulator is multiplied by ``M``, rounded by ``S`` (``params.rounding``),
    offset by ``zero_point``, saturated to int8/uint8, clipped at ``zero_point`` when
    ``params.relu``, and sent on ``y``. With ``params.per_row_scale`` each row has its own
    ``M``/``S`` in a ``rows``-word memory, read with the row's address as the bias is (the cycle
    formulas do not change).

    Latency and throughput (:mod:`hwsim.golden.common.int8_mvu`, with ``C = cols/lanes``,
    ``R = rows``, no idle input and no back-pressure):

    * a vector takes ``C + R·C + 4`` cycles from its first ``x`` beat to its last ``y`` beat
      (``C`` to load ``x``, ``R·C`` to compute, 4 pipeline stages);
    * back-to-back vectors start every ``C + R·C`` cycles (loading the next ``x`` overlaps the
      pipeline drain): ``lanes`` MACs per cycle for ``R·C/(C + R·C)`` of the time;
    * a weight matrix loads in ``R·C`` cycles, a bias vector in ``R`` cycles.

    Back-pressure on ``y`` stalls the whole pipeline; idle cycles on ``x`` only delay the start.
    Each row carries its vector's ``M``/``S`` down the pipeline, so the next vector (and its
    ``M``/``S``) may load while a stall still holds this vector's last rows.

    Parameters
    ----------
    params : Int8MvuParams
        ``lanes``, ``rows``, ``cols``, activation/output signedness, ``relu``, ``zero_point``,
        ``bias``, ``rounding``, multiplier/shift widths.

    Members
    -------
    w : ``In(stream.Signature(unsigned(8·lanes)))``
        Weight words in memory order (:func:`hwsim.golden.common.int8_mvu.weight_words`); a
        matrix is ``rows·cols/lanes`` beats. Accepted only between vectors; once started, a
        matrix load blocks ``x`` until complete.
    b : ``In(stream.Signature(signed(32)))``
        Only where ``params.bias``: the bias of each row in order
        (:func:`hwsim.golden.common.int8_mvu.bias_words`), ``rows`` beats, accepted only between
        vectors when ``w`` is idle; once started, a bias load blocks ``x`` until complete.
    s : ``In(stream.Signature(unsigned(mult_bits + shift_bits)))``
        Only where ``params.per_row_scale``: each row's ``M | S << mult_bits``
        (:func:`hwsim.golden.common.int8_mvu.scale_words`), ``rows`` beats, accepted only
        between vectors when ``w`` and ``b`` are idle; a started load blocks ``x`` until
        complete.
    x : ``In(stream.Signature(ArrayLayout(signed(8) or unsigned(8), lanes)))``
        Activations, ``lanes`` per beat, ``cols/lanes`` beats per vector.
    y : ``Out(stream.Signature(signed(8) or unsigned(8)))``
        One output code per row, rows in order.
    mult : ``In(unsigned(mult_bits))``, shift : ``In(unsigned(shift_bits))``
        Requantization ``M`` and ``S``, sampled with the first ``x`` beat of each vector (free
        at any other time; back-to-back vectors may each have their own). Absent where
        ``params.per_row_scale``.
    busy : ``Out(1)``
        High while a vector is loading or computing.

    ``weights`` (``rows × cols`` int8 codes), ``bias`` (``rows`` int32) and ``row_mult``/
    ``row_shift`` (``rows`` per-row ``M``/``S``), where given, are the memories' contents
    after configuration (a compiled design bakes its layers in); the ``w``/``b``/``s`` streams
    can still overwrite them.
    """

    def __init__(self, params: spec.Int8MvuParams, weights=None, bias=None, row_mult=None,
                 row_shift=None):
        if not isinstance(params, spec.Int8MvuParams):
            self._MustUse__silence = True  # never elaborated: no "created but never used" warning
            raise HwsimError(f"Int8MVU needs Int8MvuParams, not {type(params).__name__}")
        self.params = p = params
        self._w_init = [] if weights is None else spec.weight_words(weights, p.lanes)
        if weights is not None and len(self._w_init) != p.weight_depth:
            self._MustUse__silence = True
            raise HwsimError(f"Int8MVU weights: need {p.rows}×{p.cols} codes")
        if bias is not None and not p.bias:
            self._MustUse__silence = True
            raise HwsimError("Int8MVU bias contents given, but params.bias is off")
        self._b_init = [] if bias is None else [int(v) for v in np.ravel(bias)]
        if bias is not None and len(self._b_init) != p.rows:
            self._MustUse__silence = True
            raise HwsimError(f"Int8MVU bias: need {p.rows} values")
        if (row_mult is None) != (row_shift is None) \
                or (row_mult is not None and not p.per_row_scale):
            self._MustUse__silence = True
            raise HwsimError("Int8MVU row_mult/row_shift: give both, and only with "
                             "params.per_row_scale")
        try:
            self._s_init = [] if row_mult is None else spec.scale_words(p, row_mult, row_shift)
        except (HwsimError, ValueError) as e:
            self._MustUse__silence = True
            raise HwsimError(f"Int8MVU row scales: {e}") from None
        act = signed(8) if p.act_signed else unsigned(8)
        members = {
            "w": In(stream.Signature(unsigned(8 * p.lanes))),
            "x": In(stream.Signature(data.ArrayLayout(act, p.lanes))),
            "y": Out(stream.Signature(signed(8) if p.out_signed else unsigned(8))),
        }
        if not p.per_row_scale:
            members["mult"] = In(unsigned(p.mult_bits))
            members["shift"] = In(unsigned(p.shift_bits))
        members["busy"] = Out(1)
        if p.bias:
            members["b"] = In(stream.Signature(signed(spec.BIAS_BITS)))
        if p.per_row_scale:
            members["s"] = In(stream.Signature(unsigned(p.scale_bits)))
        super().__init__(members)

    def elaborate(self, platform):
        p = self.params
        m = Module()

        wmem = Memory(shape=unsigned(8 * p.lanes), depth=p.weight_depth, init=self._w_init)
        xmem = Memory(shape=unsigned(8 * p.lanes), depth=p.chunks, init=[])
        m.submodules.wmem = wmem
        m.submodules.xmem = xmem
        w_wr, w_rd = wmem.write_port(), wmem.read_port()
        x_wr, x_rd = xmem.write_port(), xmem.read_port()

        # A frozen pipeline when the output register is full and not taken.
        advance = Signal()
        m.d.comb += advance.eq(~self.y.valid | self.y.ready)

        # ---- control: weight/bias load, activation load, issue ----------------------------
        w_addr = Signal(range(max(p.weight_depth, 2)))
        x_cnt = Signal(range(max(p.chunks, 2)))
        row = Signal(range(max(p.rows, 2)))
        chunk = Signal(range(max(p.chunks, 2)))
        # M/S of the vector being loaded or computed (sampled with its first x beat); each
        # issued address carries them on, so a stalled row keeps its own vector's scale.
        # Per-row scales instead come from their memory, read with the row's address.
        mult_shape, shift_shape = unsigned(p.mult_bits), unsigned(p.shift_bits)
        if not p.per_row_scale:
            pend_mult = Signal(mult_shape)
            pend_shift = Signal(shift_shape)

        issue = Signal()  # a (row, chunk) address goes to the memories this cycle
        m.d.comb += [
            w_rd.addr.eq(w_addr),
            x_rd.addr.eq(chunk),
            w_rd.en.eq(advance),
            x_rd.en.eq(advance),
            w_wr.addr.eq(w_addr),
            w_wr.data.eq(self.w.payload),
            x_wr.addr.eq(x_cnt),
            x_wr.data.eq(self.x.payload.as_value()),
        ]

        bias_value = Const(0, signed(2))
        b_valid = Const(0, 1)
        if p.bias:
            bmem = Memory(shape=signed(spec.BIAS_BITS), depth=p.rows, init=self._b_init)
            m.submodules.bmem = bmem
            b_wr, b_rd = bmem.write_port(), bmem.read_port()
            b_addr = Signal(range(max(p.rows, 2)))
            m.d.comb += [
                b_rd.addr.eq(row),
                b_rd.en.eq(advance),
                b_wr.addr.eq(b_addr),
                b_wr.data.eq(self.b.payload),
            ]
            bias_value = b_rd.data
            b_valid = self.b.valid
            last_b = b_addr == p.rows - 1

        s_valid = Const(0, 1)
        if p.per_row_scale:
            smem = Memory(shape=unsigned(p.scale_bits), depth=p.rows, init=self._s_init)
            m.submodules.smem = smem
            s_wr, s_rd = smem.write_port(), smem.read_port()
            s_addr = Signal(range(max(p.rows, 2)))
            m.d.comb += [
                s_rd.addr.eq(row),
                s_rd.en.eq(advance),
                s_wr.addr.eq(s_addr),
                s_wr.data.eq(self.s.payload),
            ]
            s_valid = self.s.valid
            last_s = s_addr == p.rows - 1

        last_w = w_addr == p.weight_depth - 1
        last_x = x_cnt == p.chunks - 1
        with m.FSM():
            with m.State("IDLE"):
                x_ready = ~self.w.valid & ~b_valid
                if p.per_row_scale:
                    x_ready = x_ready & ~s_valid
                m.d.comb += [self.w.ready.eq(1), self.x.ready.eq(x_ready)]
                if p.bias:
                    m.d.comb += self.b.ready.eq(~self.w.valid)
                if p.per_row_scale:
                    m.d.comb += self.s.ready.eq(~self.w.valid & ~b_valid)
                with m.If(self.w.valid):
                    m.d.comb += w_wr.en.eq(1)
                    m.d.sync += w_addr.eq(Mux(last_w, 0, w_addr + 1))
                    with m.If(~last_w):
                        m.next = "LOAD_W"
                if p.bias:
                    with m.Elif(self.b.valid):
                        m.d.comb += b_wr.en.eq(1)
                        m.d.sync += b_addr.eq(Mux(last_b, 0, b_addr + 1))
                        with m.If(~last_b):
                            m.next = "LOAD_B"
                if p.per_row_scale:
                    with m.Elif(self.s.valid):
                        m.d.comb += s_wr.en.eq(1)
                        m.d.sync += s_addr.eq(Mux(last_s, 0, s_addr + 1))
                        with m.If(~last_s):
                            m.next = "LOAD_S"
                with m.Elif(self.x.valid):
                    m.d.comb += x_wr.en.eq(1)
                    if not p.per_row_scale:
                        m.d.sync += [pend_mult.eq(self.mult), pend_shift.eq(self.shift)]
                    with m.If(last_x):
                        m.d.sync += x_cnt.eq(0)
                        m.next = "COMPUTE"
                    with m.Else():
                        m.d.sync += x_cnt.eq(x_cnt + 1)
                        m.next = "LOAD_X"
            with m.State("LOAD_W"):
                m.d.comb += self.w.ready.eq(1)
                with m.If(self.w.valid):
                    m.d.comb += w_wr.en.eq(1)
                    m.d.sync += w_addr.eq(Mux(last_w, 0, w_addr + 1))
                    with m.If(last_w):
                        m.next = "IDLE"
            if p.bias:
                with m.State("LOAD_B"):
                    m.d.comb += self.b.ready.eq(1)
                    with m.If(self.b.valid):
                        m.d.comb += b_wr.en.eq(1)
                        m.d.sync += b_addr.eq(Mux(last_b, 0, b_addr + 1))
                        with m.If(last_b):
                            m.next = "IDLE"
            if p.per_row_scale:
                with m.State("LOAD_S"):
                    m.d.comb += self.s.ready.eq(1)
                    with m.If(self.s.valid):
                        m.d.comb += s_wr.en.eq(1)
                        m.d.sync += s_addr.eq(Mux(last_s, 0, s_addr + 1))
                        with m.If(last_s):
                            m.next = "IDLE"
            with m.State("LOAD_X"):
                m.d.comb += [self.x.ready.eq(1), self.busy.eq(1)]
                with m.If(self.x.valid):
                    m.d.comb += x_wr.en.eq(1)
                    with m.If(last_x):
                        m.d.sync += x_cnt.eq(0)
                        m.next = "COMPUTE"
                    with m.Else():
                        m.d.sync += x_cnt.eq(x_cnt + 1)
            with m.State("COMPUTE"):
                m.d.comb += [self.busy.eq(1), issue.eq(advance)]
                with m.If(advance):
                    m.d.sync += w_addr.eq(Mux(last_w, 0, w_addr + 1))
                    with m.If(chunk == p.chunks - 1):
                        m.d.sync += chunk.eq(0)
                        with m.If(row == p.rows - 1):
                            m.d.sync += row.eq(0)
                            m.next = "IDLE"
                        with m.Else():
                            m.d.sync += row.eq(row + 1)
                    with m.Else():
                        m.d.sync += chunk.eq(chunk + 1)

        # ---- stage 1: memories' outputs → lanes multipliers → adder tree → accumulate ------
        s1_valid, s1_first, s1_last = Signal(), Signal(), Signal()
        with m.If(advance):
            m.d.sync += [
                s1_valid.eq(issue),
                s1_first.eq(chunk == 0),
                s1_last.eq(chunk == p.chunks - 1),
            ]
        if p.per_row_scale:
            # the scale memory's output: the row of the address issued one advance earlier,
            # i.e. the row now in stage 1 (held while stalled, as the bias is)
            s1_mult, s1_shift = s_rd.data[:p.mult_bits], s_rd.data[p.mult_bits:]
        else:
            s1_mult = Signal(mult_shape, name="s1_mult")
            s1_shift = Signal(shift_shape, name="s1_shift")
            with m.If(advance):
                m.d.sync += [s1_mult.eq(pend_mult), s1_shift.eq(pend_shift)]

        terms = []
        for lane in range(p.lanes):
            wl = w_rd.data[8 * lane: 8 * lane + 8].as_signed()
            xl = x_rd.data[8 * lane: 8 * lane + 8]
            xl = xl.as_signed() if p.act_signed else xl
            term = Signal(signed(17), name=f"prod{lane}")
            m.d.comb += term.eq(multiply(wl, xl, "dsp"))
            terms.append(term)
        tree = Signal(signed(p.acc_width))
        m.d.comb += tree.eq(adder_tree(terms))

        acc = Signal(signed(p.acc_width))
        acc_next = Signal(signed(p.acc_width))
        m.d.comb += acc_next.eq(Mux(s1_first, tree + bias_value, acc + tree))

        s2_valid = Signal()
        s2_acc = Signal(signed(p.acc_width))
        s2_mult = Signal(mult_shape)
        s2_shift = Signal(shift_shape)
        with m.If(advance):
            m.d.sync += s2_valid.eq(s1_valid & s1_last)
            with m.If(s1_valid):
                m.d.sync += acc.eq(acc_next)
            with m.If(s1_valid & s1_last):
                m.d.sync += [s2_acc.eq(acc_next), s2_mult.eq(s1_mult), s2_shift.eq(s1_shift)]

        # ---- stage 2: multiply by M -------------------------------------------------------
        s3_valid = Signal()
        s3_prod = Signal(signed(p.acc_width + p.mult_bits + 1))
        s3_shift = Signal(shift_shape)
        with m.If(advance):
            m.d.sync += [
                s3_valid.eq(s2_valid),
                s3_prod.eq(multiply(s2_acc, s2_mult, "dsp")),
                s3_shift.eq(s2_shift),
            ]

        # ---- stage 3: round, add the zero point, saturate, ReLU clip → output register ----
        rounded = Signal(signed(p.acc_width + p.mult_bits + 2))
        m.d.comb += rounded.eq(round_shift(s3_prod, s3_shift, p.out.rounding) + p.zero_point)
        code = Signal.like(self.y.payload)
        m.d.comb += code.eq(saturate(rounded, p.out))
        if p.relu and p.zero_point > p.out.min_code:  # at the lowest code the clip is moot
            code = Mux(code < p.zero_point, p.zero_point, code)
        with m.If(advance):
            m.d.sync += self.y.valid.eq(s3_valid)
            with m.If(s3_valid):
                m.d.sync += self.y.payload.eq(code)
        return m
