"""Leading-one score surrogate and comparison-free top-K selector (VitaLLM predictive sparsity).

Specification: :mod:`hwsim.golden.vitallm.lo_topk`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import lo_topk as spec
from rtl.common import adder_tree

__all__ = ["LoTopK"]


def _leading_one(m: Module, v, name: str):
    """(live, position) of an int8 code's magnitude: a priority encoder, no arithmetic."""
    mag = Signal(unsigned(8), name=f"{name}_mag")
    m.d.comb += mag.eq(Mux(v < 0, -v, v))
    pos = Signal(range(8), name=f"{name}_lo")
    for b in range(8):  # later assignments win: the highest set bit
        with m.If(mag[b]):
            m.d.comb += pos.eq(b)
    return mag != 0, pos


class LoTopK(wiring.Component):
    """Predicts the ``K`` most relevant of the ``L ≤ M`` visible cached keys for one query.

    The query (``d`` int8 lanes, one beat) is held with its run-time length ``L``; each of the
    ``L`` key rows (one beat) gets its surrogate score ``Σ sign·2**(lo(q)+lo(k))`` in one
    cycle — ``d`` priority encoders, shifters and an adder tree, no multiplier — into a score
    register file, and sets its bit of the ``undecided`` mask (so tokens ``L … M − 1`` never
    take part: no comparator on ``L``). The selector then runs the MSB-first radix selection
    for ``min(K, L)`` tokens, one key bit per cycle, using population counts of ``M``-bit
    masks only, plus one cycle to break ties by index; the ``M``-bit mask of kept tokens leaves
    on ``sel`` (bit ``j`` = token ``j``).

    Latency (no idle input, no back-pressure): ``1 + L + (W + 1) + 1`` cycles from the query
    beat to the ``sel`` beat, ``W = score_width`` (:func:`hwsim.golden.vitallm.lo_topk.latency_cycles`).

    Members
    -------
    q : ``In(stream.Signature(ArrayLayout(signed(8), d)))``
        One beat per query: its ``d`` int8 codes, lane 0 lowest; held until its ``sel`` beat.
    k : ``In(stream.Signature(ArrayLayout(signed(8), d)))``
        ``L`` beats per query, after its ``q`` beat: key rows of tokens ``0 … L − 1`` in order.
    sel : ``Out(stream.Signature(unsigned(M)))``
        One beat per query: bit ``j`` is 1 where token ``j`` is among the ``min(K, L)`` kept
        (exactly that many bits set, all below ``L``).
    length : ``In(unsigned(bits(M)), init=M)``
        ``L``, the tokens visible to the query, ``1 … M`` (other values: undefined); sampled
        with its ``q`` beat. Undriven it stays ``M``.
    """

    def __init__(self, params: spec.LoTopKParams):
        if not isinstance(params, spec.LoTopKParams):
            self._MustUse__silence = True
            raise HwsimError(f"LoTopK needs LoTopKParams, not {type(params).__name__}")
        self.params = p = params
        row = data.ArrayLayout(signed(8), p.head_dim)
        super().__init__({
            "q": In(stream.Signature(row)),
            "k": In(stream.Signature(row)),
            "sel": Out(stream.Signature(unsigned(p.tokens))),
            "length": In(unsigned(p.tokens.bit_length()), init=p.tokens),
        })

    def elaborate(self, platform):
        p = self.params
        M, W = p.tokens, p.score_width
        m = Module()

        qreg = Signal(data.ArrayLayout(signed(8), p.head_dim))
        # surrogate of the key row on `k` against the held query (combinational)
        terms = []
        for i in range(p.head_dim):
            q_live, q_lo = _leading_one(m, qreg[i], f"q{i}")
            k_live, k_lo = _leading_one(m, self.k.payload[i], f"k{i}")
            mag = Signal(unsigned(15), name=f"t{i}_mag")
            m.d.comb += mag.eq(Mux(q_live & k_live, Const(1, 1) << (q_lo + k_lo), 0))
            neg = qreg[i][-1] ^ self.k.payload[i][-1]
            term = Signal(signed(16), name=f"t{i}")
            m.d.comb += term.eq(Mux(neg, -mag, mag))
            terms.append(term)
        score = Signal(signed(W))
        m.d.comb += score.eq(adder_tree(terms))

        keys = [Signal(unsigned(W), name=f"key{j}") for j in range(M)]  # score + 2**(W-1)
        idx = Signal(range(max(M, 2)))
        bit = Signal(range(max(W, 2)))
        undecided = Signal(M)
        selected = Signal(M)
        need = Signal(range(M + 1))

        ones = Signal(M)
        m.d.comb += ones.eq(undecided & Cat(k.bit_select(bit, 1) for k in keys))
        n_ones = Signal(range(M + 1))
        m.d.comb += n_ones.eq(adder_tree([ones[j] for j in range(M)]))

        # tie-break: the lowest-indexed `need` undecided tokens (prefix counts, not scores)
        first = Signal(M)
        count = Const(0, range(M + 1))
        for j in range(M):
            m.d.comb += first[j].eq(undecided[j] & (count < need))
            count = count + undecided[j]

        length = Signal.like(self.length)
        with m.FSM():
            with m.State("QUERY"):
                m.d.comb += self.q.ready.eq(1)
                with m.If(self.q.valid):
                    m.d.sync += [qreg.eq(self.q.payload), idx.eq(0), undecided.eq(0),
                                 length.eq(self.length)]
                    m.next = "KEYS"
            with m.State("KEYS"):
                m.d.comb += self.k.ready.eq(1)
                with m.If(self.k.valid):
                    # each key row marks its token undecided: after L rows, bits 0 … L − 1
                    for j in range(M):
                        with m.If(idx == j):
                            m.d.sync += [keys[j].eq(score + (1 << (W - 1))),
                                         undecided[j].eq(1)]
                    with m.If(idx == length - 1):
                        m.d.sync += [bit.eq(W - 1), selected.eq(0),
                                     need.eq(Mux(length < p.keep, length, p.keep))]
                        m.next = "SELECT"
                    with m.Else():
                        m.d.sync += idx.eq(idx + 1)
            with m.State("SELECT"):
                with m.If(n_ones >= need):
                    m.d.sync += undecided.eq(ones)
                with m.Else():
                    m.d.sync += [selected.eq(selected | ones), need.eq(need - n_ones),
                                 undecided.eq(undecided & ~ones)]
                m.d.sync += bit.eq(bit - 1)
                with m.If(bit == 0):
                    m.next = "TIES"
            with m.State("TIES"):
                m.d.sync += [self.sel.payload.eq(selected | first), self.sel.valid.eq(1)]
                m.next = "OUT"
            with m.State("OUT"):
                with m.If(self.sel.ready):
                    m.d.sync += self.sel.valid.eq(0)
                    m.next = "QUERY"
        return m
