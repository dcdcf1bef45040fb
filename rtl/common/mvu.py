"""The skeleton every matrix–vector unit shares: memories, controller and the four pipeline
stages; a unit says only what differs (its lane product, its multiplier by ``M`` and its
output code).

The controller takes configuration streams between vectors (the weight words first, then any
per-row memory such as a bias or a per-row scale, each blocking the ones after it and ``x``),
loads one vector of ``x`` into a ``chunks``-word buffer and walks the weight memory row by row,
``chunks`` words a row. The pipeline (all stages held while the output register is full and not
taken):

1. memory outputs → lane products → adder tree → row accumulator (from the row's bias);
2. the accumulator × ``M`` at the row's last chunk;
3. round by ``S``, the unit's output code → the ``y`` register.

Each issued address carries its vector's ``M``/``S`` (sampled with the first ``x`` beat) down the
pipeline, or reads a per-row ``M``/``S`` with the row's address as the bias is, so a stalled row
keeps its own scale while the next vector loads. Cycle formulas:
:func:`hwsim.golden.vitallm.ternary_mvu.latency_cycles` and its int8 twin.

A unit whose ``params.pipeline`` is ``"deep"`` registers the memory outputs, its adder trees
every :data:`~hwsim.golden.vitallm.ternary_mvu.TREE_LEVELS_PER_STAGE` levels and their sums, its
multiplier's partial-product tree (:meth:`MatrixVectorUnit.mult_terms`) and the rounded value
before saturation (:meth:`MatrixVectorUnit.round_value`, :meth:`MatrixVectorUnit.fit_value`):
same interval, :func:`hwsim.golden.vitallm.ternary_mvu.pipeline_depth` stages.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory

from hwsim.golden.vitallm.ternary_mvu import TREE_LEVELS_PER_STAGE
from rtl.common import adder_tree

__all__ = ["ConfigMemory", "MatrixVectorUnit"]


@dataclass(frozen=True)
class ConfigMemory:
    """A memory written from the stream member ``name`` between vectors: ``depth`` words of
    ``shape`` (``init``: contents after configuration). The weight memory (``name == "w"``) is
    read by the walking weight address; every other one with the row's address."""

    name: str
    shape: object
    depth: int
    init: tuple = ()


class MatrixVectorUnit(wiring.Component):
    """Base of :class:`~rtl.vitallm.ternary_mvu.TernaryMVU` and
    :class:`~rtl.common.int8_mvu.Int8MVU`: members ``w``, ``x``, ``y``, ``busy`` and, unless
    :meth:`per_row_scale`, ``mult``/``shift``; the subclass builds the signature and gives the
    hooks below. ``params`` needs ``lanes``, ``rows``, ``chunks``, ``weight_depth``,
    ``mult_bits``, ``shift_bits`` and ``acc_width``."""

    #: width of one activation code in an ``x`` word
    act_bits = 8

    # ---- hooks ----------------------------------------------------------------------------
    def memories(self) -> list[ConfigMemory]:
        """The configuration memories, ``w`` first, in the priority of their streams."""
        raise NotImplementedError

    def per_row_scale(self) -> bool:
        """Whether ``M``/``S`` come from the per-row memory ``s`` (``M | S << mult_bits``)."""
        return False

    def lane_terms(self, m: Module, w_word, x_word) -> list:
        """The ``lanes`` products of one weight word and one activation word."""
        raise NotImplementedError

    def tree_shape(self):
        """The adder tree's sum shape."""
        return signed(self.params.acc_width)

    def times_mult(self, acc, mult):
        """``acc · M`` (stage 2)."""
        raise NotImplementedError

    def output_code(self, m: Module, prod, shift):
        """The output code of ``prod`` rounded by ``shift`` (stage 3's combinational logic)."""
        raise NotImplementedError

    # hooks of the deep pipeline (``params.pipeline == "deep"``)
    def mult_terms(self, acc, mult) -> list:
        """Terms whose sum is ``acc · M`` (summed by a registered adder tree)."""
        raise NotImplementedError

    def round_value(self, m: Module, prod, shift):
        """``(floor, inc)``: ``prod`` rounded by ``shift`` is ``floor + inc``
        (:func:`rtl.common.arith.round_shift_parts`), before the output format's overflow
        rule."""
        raise NotImplementedError

    def fit_value(self, m: Module, value):
        """The output code of a rounded value."""
        raise NotImplementedError

    # ---- the skeleton ---------------------------------------------------------------------
    def elaborate(self, platform):
        p = self.params
        m = Module()
        mems = self.memories()
        xmem = Memory(shape=unsigned(self.act_bits * p.lanes), depth=p.chunks, init=[])
        m.submodules.xmem = xmem
        x_wr, x_rd = xmem.write_port(), xmem.read_port()

        # A frozen pipeline when the output register is full and not taken.
        advance = Signal()
        m.d.comb += advance.eq(~self.y.valid | self.y.ready)

        x_cnt = Signal(range(max(p.chunks, 2)))
        row = Signal(range(max(p.rows, 2)))
        chunk = Signal(range(max(p.chunks, 2)))
        issue = Signal()  # a (row, chunk) address goes to the memories this cycle

        ports = {}  # name → (stream, write port, read port, write address, last address)
        for cm in mems:
            mem = Memory(shape=cm.shape, depth=cm.depth, init=list(cm.init))
            m.submodules[f"{cm.name}mem"] = mem
            wr, rd = mem.write_port(), mem.read_port()
            addr = Signal(range(max(cm.depth, 2)), name=f"{cm.name}_addr")
            st = getattr(self, cm.name)
            m.d.comb += [rd.addr.eq(addr if cm.name == "w" else row), rd.en.eq(advance),
                         wr.addr.eq(addr), wr.data.eq(st.payload)]
            ports[cm.name] = (st, wr, rd, addr, addr == cm.depth - 1)
        m.d.comb += [x_rd.addr.eq(chunk), x_rd.en.eq(advance), x_wr.addr.eq(x_cnt),
                     x_wr.data.eq(self.x.payload.as_value())]

        row_scale = self.per_row_scale()
        mult_shape, shift_shape = unsigned(p.mult_bits), unsigned(p.shift_bits)
        if not row_scale:  # M/S of the vector being loaded or computed
            pend_mult, pend_shift = Signal(mult_shape), Signal(shift_shape)

        def load(name):  # one configuration beat written; the address wraps after the last
            _, wr, _, addr, last = ports[name]
            m.d.comb += wr.en.eq(1)
            m.d.sync += addr.eq(Mux(last, 0, addr + 1))
            return last

        w_addr, last_x = ports["w"][3], x_cnt == p.chunks - 1
        with m.FSM():
            with m.State("IDLE"):
                blocked = Const(0, 1)
                for cm in mems:  # each stream waits for the ones before it
                    m.d.comb += ports[cm.name][0].ready.eq(~blocked)
                    blocked = blocked | ports[cm.name][0].valid
                m.d.comb += self.x.ready.eq(~blocked)
                for i, cm in enumerate(mems):
                    with (m.If if i == 0 else m.Elif)(ports[cm.name][0].valid):
                        with m.If(~load(cm.name)):
                            m.next = f"LOAD_{cm.name.upper()}"
                with m.Elif(self.x.valid):
                    m.d.comb += x_wr.en.eq(1)
                    if not row_scale:
                        m.d.sync += [pend_mult.eq(self.mult), pend_shift.eq(self.shift)]
                    with m.If(last_x):
                        m.d.sync += x_cnt.eq(0)
                        m.next = "COMPUTE"
                    with m.Else():
                        m.d.sync += x_cnt.eq(x_cnt + 1)
                        m.next = "LOAD_X"
            for cm in mems:
                with m.State(f"LOAD_{cm.name.upper()}"):
                    m.d.comb += ports[cm.name][0].ready.eq(1)
                    with m.If(ports[cm.name][0].valid):
                        with m.If(load(cm.name)):
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
                    m.d.sync += w_addr.eq(Mux(ports["w"][4], 0, w_addr + 1))
                    with m.If(chunk == p.chunks - 1):
                        m.d.sync += chunk.eq(0)
                        with m.If(row == p.rows - 1):
                            m.d.sync += row.eq(0)
                            m.next = "IDLE"
                        with m.Else():
                            m.d.sync += row.eq(row + 1)
                    with m.Else():
                        m.d.sync += chunk.eq(chunk + 1)

        # ---- stage 1: lane products → adder tree → accumulate ------------------------------
        deep = getattr(p, "pipeline", "short") == "deep"

        def reg(value, name):  # one register stage, held while the pipeline is frozen
            r = Signal(Value.cast(value).shape(), name=name)
            with m.If(advance):
                m.d.sync += r.eq(value)
            return r

        def tree_sum(terms, name):  # the adder tree; the deep pipeline registers its levels
            if not deep:
                return adder_tree(terms), 0
            regs = []

            def between(depth, level):
                if depth % TREE_LEVELS_PER_STAGE:
                    return level
                regs.append(depth)
                return [reg(v, f"{name}{len(regs) - 1}_{i}") for i, v in enumerate(level)]

            total = adder_tree(terms, between)
            return total, len(regs)

        def delayed(values, n, name):  # control bits along n register stages
            for k in range(n):
                values = [reg(v, f"{name}{k}_{i}") for i, v in enumerate(values)]
            return values

        s1_valid, s1_first, s1_last = Signal(), Signal(), Signal()
        with m.If(advance):
            m.d.sync += [s1_valid.eq(issue), s1_first.eq(chunk == 0),
                         s1_last.eq(chunk == p.chunks - 1)]
        if row_scale:
            # the scale memory's output: the row of the address issued one advance earlier,
            # i.e. the row now in stage 1 (held while stalled, as the bias is)
            s_data = ports["s"][2].data
            s1_mult, s1_shift = s_data[:p.mult_bits], s_data[p.mult_bits:]
        else:
            s1_mult, s1_shift = Signal(mult_shape), Signal(shift_shape)
            with m.If(advance):
                m.d.sync += [s1_mult.eq(pend_mult), s1_shift.eq(pend_shift)]

        w_data, x_data = ports["w"][2].data, x_rd.data
        bias = ports["b"][2].data if "b" in ports else Const(0, signed(2))
        ctrl = [s1_valid, s1_first, s1_last, s1_mult, s1_shift, bias]
        if deep:  # the memory outputs into registers
            w_data, x_data = reg(w_data, "w_q"), reg(x_data, "x_q")
            ctrl = delayed(ctrl, 1, "mem_q")
        tree_value, regs = tree_sum(self.lane_terms(m, w_data, x_data), "lane_tree")
        ctrl = delayed(ctrl, regs, "lane_tree_c")
        tree = Signal(self.tree_shape())
        m.d.comb += tree.eq(tree_value)
        if deep:  # the tree's sum into a register
            tree, ctrl = reg(tree, "tree_q"), delayed(ctrl, 1, "tree_q_c")
        s1_valid, s1_first, s1_last, s1_mult, s1_shift, bias = ctrl
        acc, acc_next = Signal(signed(p.acc_width)), Signal(signed(p.acc_width))
        m.d.comb += acc_next.eq(Mux(s1_first, tree + bias, acc + tree))

        s2_valid, s2_acc = Signal(), Signal(signed(p.acc_width))
        s2_mult, s2_shift = Signal(mult_shape), Signal(shift_shape)
        with m.If(advance):
            m.d.sync += s2_valid.eq(s1_valid & s1_last)
            with m.If(s1_valid):
                m.d.sync += acc.eq(acc_next)
            with m.If(s1_valid & s1_last):
                m.d.sync += [s2_acc.eq(acc_next), s2_mult.eq(s1_mult), s2_shift.eq(s1_shift)]

        # ---- stage 2: × M -----------------------------------------------------------------
        s3_valid, s3_shift = Signal(), Signal(shift_shape)
        s3_prod = Signal(signed(p.acc_width + p.mult_bits + 1))
        if deep:  # the partial products' tree, registered
            prod, regs = tree_sum(self.mult_terms(s2_acc, s2_mult), "mult_tree")
            s2_valid, s2_shift = delayed([s2_valid, s2_shift], regs, "mult_tree_c")
        else:
            prod = self.times_mult(s2_acc, s2_mult)
        with m.If(advance):
            m.d.sync += [s3_valid.eq(s2_valid), s3_prod.eq(prod), s3_shift.eq(s2_shift)]

        # ---- stage 3: round, the output code → output register ----------------------------
        if deep:  # the rounding's two parts, registered; their sum, the overflow rule
            floor, inc = self.round_value(m, s3_prod, s3_shift)
            floor, inc = reg(floor, "floor_q"), reg(inc, "inc_q")
            (s3_valid,) = delayed([s3_valid], 1, "rounded_c")
            code = self.fit_value(m, floor + inc)
        else:
            code = self.output_code(m, s3_prod, s3_shift)
        with m.If(advance):
            m.d.sync += self.y.valid.eq(s3_valid)
            with m.If(s3_valid):
                m.d.sync += self.y.payload.eq(code)
        return m
