"""General int8 matrix–vector unit (the hardware of a quantized ``MatMul``/``Gemm``).

Specification: :mod:`hwsim.golden.common.int8_mvu` (golden function, cycle formulas, weight and
bias word formats). This module only builds the hardware.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Mux, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.common import int8_mvu as spec
from rtl.common import round_shift, saturate
from rtl.common.booth import multiply
from rtl.common.mvu import ConfigMemory, MatrixVectorUnit

__all__ = ["Int8MVU"]


class Int8MVU(MatrixVectorUnit):
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
            "y": Out(stream.Signature(signed(p.out_bits) if p.out_signed
                                     else unsigned(p.out_bits))),
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

    def memories(self) -> list[ConfigMemory]:
        p = self.params
        mems = [ConfigMemory("w", unsigned(8 * p.lanes), p.weight_depth, tuple(self._w_init))]
        if p.bias:
            mems.append(ConfigMemory("b", signed(spec.BIAS_BITS), p.rows, tuple(self._b_init)))
        if p.per_row_scale:
            mems.append(ConfigMemory("s", unsigned(p.scale_bits), p.rows, tuple(self._s_init)))
        return mems

    def per_row_scale(self) -> bool:
        return self.params.per_row_scale

    def lane_terms(self, m, w_word, x_word) -> list:
        terms = []
        for lane in range(self.params.lanes):
            wl = w_word[8 * lane: 8 * lane + 8].as_signed()
            xl = x_word[8 * lane: 8 * lane + 8]
            xl = xl.as_signed() if self.params.act_signed else xl
            term = Signal(signed(17), name=f"prod{lane}")
            m.d.comb += term.eq(multiply(wl, xl, "dsp"))
            terms.append(term)
        return terms

    def times_mult(self, acc, mult):
        return multiply(acc, mult, "dsp")

    def output_code(self, m, prod, shift):
        """Round, add the zero point, saturate, clip at the zero point after a ReLU."""
        p = self.params
        rounded = Signal(signed(p.acc_width + p.mult_bits + 2))
        m.d.comb += rounded.eq(round_shift(prod, shift, p.out.rounding) + p.zero_point)
        code = Signal.like(self.y.payload)
        m.d.comb += code.eq(saturate(rounded, p.out))
        if p.relu and p.zero_point > p.out.min_code:  # at the lowest code the clip is moot
            code = Mux(code < p.zero_point, p.zero_point, code)
        return code
