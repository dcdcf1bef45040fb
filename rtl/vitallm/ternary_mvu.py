"""Multiplier-free ternary matrix–vector unit (the TINT-style BitLinear core).

Specification: :mod:`hwsim.golden.vitallm.ternary_mvu` (golden function, cycle formulas, I2_S weight
format). This module only builds the hardware.
"""

from __future__ import annotations

from amaranth.hdl import Mux, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import ternary_mvu as spec
from rtl.common import round_shift, round_shift_parts, saturate, shift_add_multiply, shift_add_partials
from rtl.common.mvu import ConfigMemory, MatrixVectorUnit

__all__ = ["TernaryMVU"]


class TernaryMVU(MatrixVectorUnit):
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

    def memories(self) -> list[ConfigMemory]:
        p = self.params
        return [ConfigMemory("w", unsigned(2 * p.lanes), p.weight_depth, tuple(self._w_init))]

    @property
    def act_bits(self) -> int:
        return self.params.act.width

    def lane_terms(self, m, w_word, x_word) -> list:
        xw, terms = self.params.act.width, []
        for lane in range(self.params.lanes):
            code = w_word[2 * lane: 2 * lane + 2]
            xl = x_word[xw * lane: xw * (lane + 1)].as_signed()
            term = Signal(signed(xw + 1), name=f"term{lane}")
            # I2_S: 0 → −x, 1 → skip, 2 → +x, 3 → skip
            m.d.comb += term.eq(Mux(code == 2, xl, Mux(code == 0, -xl, 0)))
            terms.append(term)
        return terms

    def tree_shape(self):
        return signed(self.params.tree_width)

    def times_mult(self, acc, mult):
        return shift_add_multiply(acc, mult)  # shift-add: no DSP

    def mult_terms(self, acc, mult):
        return shift_add_partials(acc, mult)

    def round_value(self, m, prod, shift):
        return round_shift_parts(prod, shift, self.params.out.rounding, thermometer=True)

    def fit_value(self, m, value):
        return saturate(value, self.params.out)

    def output_code(self, m, prod, shift):
        return saturate(round_shift(prod, shift, self.params.out.rounding), self.params.out)
