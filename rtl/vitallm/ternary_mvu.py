"""Multiplier-free ternary matrix–vector unit (the TINT-style BitLinear core).

Specification: :mod:`hwsim.golden.vitallm.ternary_mvu` (golden function, cycle formulas, I2_S weight
format). This module only builds the hardware.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import ternary_mvu as spec
from rtl.common import adder_tree, round_shift, saturate, shift_add_multiply

__all__ = ["TernaryMVU"]


class TernaryMVU(wiring.Component):
    """``y = requant(W · x)``: ternary weights in on-chip memory, int8 vectors streamed through.

    Each cycle one word of ``lanes`` ternary weights (row ``r``, columns ``k·lanes …``) and the
    matching ``lanes`` activations are read; every lane adds, subtracts or skips its activation
    (no multiplier), an adder tree sums the lanes and the row accumulator adds the tree's sum.
    After ``cols/lanes`` cycles the row's accumulator is rescaled by ``M · 2**-S`` (shift-add
    multiplier, no DSP), rounded and saturated by ``params.out`` and sent on ``y``.

    Latency and throughput (:mod:`hwsim.golden.vitallm.ternary_mvu`, with ``C = cols/lanes``,
    ``R = rows``, no idle input and no back-pressure):

    * a vector takes ``C + R·C + 4`` cycles from its first ``x`` beat to its last ``y`` beat
      (``C`` to load ``x``, ``R·C`` to compute, 4 pipeline stages);
    * back-to-back vectors start every ``C + R·C`` cycles (loading the next ``x`` overlaps the
      pipeline drain), i.e. ``lanes`` ternary MACs per cycle for ``R·C/(C + R·C)`` of the time;
    * a weight matrix loads in ``R·C`` cycles, one ``w`` beat per cycle.

    Back-pressure on ``y`` stalls the whole pipeline; idle cycles on ``x`` only delay the start.
    The next vector (and its ``M``/``S``) may load while back-pressure still holds this vector's
    last rows in the pipeline: each row carries its vector's ``M``/``S`` down the pipeline, so
    every row is requantized with the scale of its own vector.

    Parameters
    ----------
    params : TernaryMvuParams
        ``lanes``, ``rows``, ``cols``, activation and output QTypes, multiplier/shift widths.

    Members
    -------
    w : ``In(stream.Signature(unsigned(2·lanes)))``
        Weight words in memory order (:func:`hwsim.golden.vitallm.ternary_mvu.weight_words`); a matrix is
        ``rows·cols/lanes`` beats. Accepted only between vectors; once started, a matrix load
        blocks ``x`` until complete. I2_S code 3 is treated as 0.
    x : ``In(stream.Signature(ArrayLayout(signed(8), lanes)))``
        Activations, ``lanes`` per beat, ``cols/lanes`` beats per vector.
    y : ``Out(stream.Signature(signed(out.width)))``
        One output code per row, rows in order.
    mult : ``In(unsigned(mult_bits))``, shift : ``In(unsigned(shift_bits))``
        Requantization ``M`` and ``S``, sampled with the first ``x`` beat of each vector (free
        at any other time; back-to-back vectors may each have their own).
    busy : ``Out(1)``
        High while a vector is loading or computing.

    ``weights`` (``rows × cols`` codes in {−1, 0, +1}), where given, are the weight memory's
    contents after configuration (a compiled design bakes its layers in); the ``w`` stream
    can still overwrite them.
    """

    def __init__(self, params: spec.TernaryMvuParams, weights=None):
        if not isinstance(params, spec.TernaryMvuParams):
            self._MustUse__silence = True  # never elaborated: no "created but never used" warning
            raise HwsimError(f"TernaryMVU needs TernaryMvuParams, not {type(params).__name__}")
        self.params = p = params
        self._w_init = [] if weights is None else spec.weight_words(weights, p.lanes)
        if weights is not None and len(self._w_init) != p.weight_depth:
            self._MustUse__silence = True
            raise HwsimError(f"TernaryMVU weights: need {p.rows}×{p.cols} ternary codes")
        super().__init__({
            "w": In(stream.Signature(unsigned(2 * p.lanes))),
            "x": In(stream.Signature(data.ArrayLayout(signed(p.act.width), p.lanes))),
            "y": Out(stream.Signature(signed(p.out.width) if p.out.signed
                                      else unsigned(p.out.width))),
            "mult": In(unsigned(p.mult_bits)),
            "shift": In(unsigned(p.shift_bits)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()

        wmem = Memory(shape=unsigned(2 * p.lanes), depth=p.weight_depth, init=self._w_init)
        xmem = Memory(shape=unsigned(p.act.width * p.lanes), depth=p.chunks, init=[])
        m.submodules.wmem = wmem
        m.submodules.xmem = xmem
        w_wr, w_rd = wmem.write_port(), wmem.read_port()
        x_wr, x_rd = xmem.write_port(), xmem.read_port()

        # A frozen pipeline when the output register is full and not taken.
        advance = Signal()
        m.d.comb += advance.eq(~self.y.valid | self.y.ready)

        # ---- control: weight load, activation load, issue ---------------------------------
        w_addr = Signal(range(max(p.weight_depth, 2)))
        x_cnt = Signal(range(max(p.chunks, 2)))
        row = Signal(range(max(p.rows, 2)))
        chunk = Signal(range(max(p.chunks, 2)))
        # M/S of the vector being loaded or computed: sampled with its first x beat and stable
        # until the next vector's first beat, which may come while this vector's last row is
        # still held in the pipeline by back-pressure; so each issued address carries them on.
        pend_mult = Signal.like(self.mult)
        pend_shift = Signal.like(self.shift)

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

        last_w = w_addr == p.weight_depth - 1
        last_x = x_cnt == p.chunks - 1
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [
                    self.w.ready.eq(1),
                    self.x.ready.eq(~self.w.valid),
                ]
                with m.If(self.w.valid):
                    m.d.comb += w_wr.en.eq(1)
                    m.d.sync += w_addr.eq(Mux(last_w, 0, w_addr + 1))
                    with m.If(~last_w):
                        m.next = "LOAD_W"
                with m.Elif(self.x.valid):
                    m.d.comb += x_wr.en.eq(1)
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

        # ---- stage 1: memories' outputs → lane select → adder tree → accumulate -----------
        s1_valid, s1_first, s1_last = Signal(), Signal(), Signal()
        s1_mult = Signal.like(self.mult)
        s1_shift = Signal.like(self.shift)
        with m.If(advance):
            m.d.sync += [
                s1_valid.eq(issue),
                s1_first.eq(chunk == 0),
                s1_last.eq(chunk == p.chunks - 1),
                s1_mult.eq(pend_mult),
                s1_shift.eq(pend_shift),
            ]

        xw = p.act.width
        terms = []
        for l in range(p.lanes):
            code = w_rd.data[2 * l: 2 * l + 2]
            xl = x_rd.data[xw * l: xw * (l + 1)].as_signed()
            term = Signal(signed(xw + 1), name=f"term{l}")
            # I2_S: 0 → −x, 1 → skip, 2 → +x, 3 → skip
            m.d.comb += term.eq(Mux(code == 2, xl, Mux(code == 0, -xl, 0)))
            terms.append(term)
        tree = Signal(signed(p.tree_width))
        m.d.comb += tree.eq(adder_tree(terms))

        acc = Signal(signed(p.acc_width))
        acc_next = Signal(signed(p.acc_width))
        m.d.comb += acc_next.eq(Mux(s1_first, tree, acc + tree))

        s2_valid = Signal()
        s2_acc = Signal(signed(p.acc_width))
        s2_mult = Signal.like(self.mult)
        s2_shift = Signal.like(self.shift)
        with m.If(advance):
            m.d.sync += s2_valid.eq(s1_valid & s1_last)
            with m.If(s1_valid):
                m.d.sync += acc.eq(acc_next)
            with m.If(s1_valid & s1_last):
                m.d.sync += [s2_acc.eq(acc_next), s2_mult.eq(s1_mult), s2_shift.eq(s1_shift)]

        # ---- stage 2: multiply by M (shift-add, no DSP) -----------------------------------
        prod_w = p.acc_width + p.mult_bits + 1
        s3_valid = Signal()
        s3_prod = Signal(signed(prod_w))
        s3_shift = Signal.like(self.shift)
        with m.If(advance):
            m.d.sync += [
                s3_valid.eq(s2_valid),
                s3_prod.eq(shift_add_multiply(s2_acc, s2_mult)),
                s3_shift.eq(s2_shift),
            ]

        # ---- stage 3: round, shift, saturate → output register ----------------------------
        with m.If(advance):
            m.d.sync += self.y.valid.eq(s3_valid)
            with m.If(s3_valid):
                m.d.sync += self.y.payload.eq(
                    saturate(round_shift(s3_prod, s3_shift, p.out.rounding), p.out)
                )
        return m
