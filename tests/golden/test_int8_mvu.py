"""The int8 MVU golden: exact accumulation, the dialect's requantizer numerics, parameters,
formats and formulas."""

import numpy as np
import pytest
from onnx import helper
from qonnx.custom_op.registry import getCustomOp

from hwsim.compile.dialect import DOMAIN
from hwsim.errors import HwsimError
from hwsim.golden.common import int8_mvu as g
from hwsim.golden.common.lanes import unpack_lanes
from quant.qtype import INT8, UINT8, QType, Rounding

RNG = np.random.default_rng(3)


def _reference(acc, mult, shift, zp, lo, hi, relu):
    """Python-integer rescale: round half to even of acc·M/2**S, + zero point, clip, ReLU."""
    out = []
    for a in np.ravel(acc):
        q, r = divmod(int(a) * mult, 1 << shift)
        half = 1 << shift >> 1 if shift else 0
        if shift and (r > half or (r == half and q % 2)):
            q += 1
        v = min(max(q + zp, lo), hi)
        out.append(max(v, zp) if relu else v)
    return np.array(out).reshape(np.shape(acc))


@pytest.mark.parametrize("act, out, zp, relu", [(INT8, INT8, 0, False), (UINT8, UINT8, 17, True),
                                                (INT8, UINT8, 128, False), (INT8, INT8, -5, True)])
def test_equals_an_integer_reference(act, out, zp, relu):
    W = RNG.integers(-128, 128, (6, 20))
    X = RNG.integers(act.min_code, act.max_code + 1, (4, 20))
    bias = RNG.integers(-(1 << 20), 1 << 20, 6)
    for mult, shift in [(1, 0), (40000, 22), (3, 1), (65535, 30), (7, 62)]:
        got = g.int8_mvu(W, X, mult, shift, bias, act, out, zp, relu)
        acc = X @ W.T + bias
        assert np.array_equal(got, _reference(acc, mult, shift, zp, out.min_code,
                                              out.max_code, relu)), (mult, shift)


def test_per_row_scales_equal_each_row_rescaled_alone():
    """One (M, S) per row gives, row by row, the codes of that row's scalar rescale; a
    per-row list of equal values gives the scalar result."""
    W = RNG.integers(-128, 128, (5, 12))
    X = RNG.integers(-128, 128, (3, 12))
    bias = RNG.integers(-5000, 5000, 5)
    M, S = np.array([1, 40000, 3, 65535, 7]), np.array([0, 22, 1, 30, 62])
    got = g.int8_mvu(W, X, M, S, bias, INT8, UINT8, 12, True)
    for r in range(5):
        row = g.int8_mvu(W[r:r + 1], X, int(M[r]), int(S[r]), bias[r:r + 1], INT8, UINT8, 12,
                         True)
        assert np.array_equal(got[:, r], row[:, 0]), r
    assert np.array_equal(g.int8_mvu(W, X, [300] * 5, [9] * 5, bias),
                          g.int8_mvu(W, X, 300, 9, bias))
    with pytest.raises(HwsimError, match="per-row"):
        g.int8_mvu(W, X, M[:3], S[:3], bias)


def test_scale_words():
    p = g.Int8MvuParams(lanes=1, rows=3, cols=1, mult_bits=10, per_row_scale=True)
    assert p.scale_bits == 16
    assert g.scale_words(p, [1, 1023, 0], [62 & 63, 0, 5]) == [1 | 62 << 10, 1023, 5 << 10]
    with pytest.raises(HwsimError, match="multiplier outside"):
        g.scale_words(p, [1024, 0, 0], 0)
    assert g.storage_bits(p) == g.storage_bits(g.Int8MvuParams(lanes=1, rows=3, cols=1,
                                                                mult_bits=10)) + 3 * 16


def test_dialect_per_channel_requant_equals_the_golden():
    """A per-channel ``Requant`` (``multipliers``/``shifts``) after ``IntMatMul`` gives the
    golden's per-row codes."""
    a = RNG.integers(-128, 128, (4, 10)).astype(np.int8)
    w = RNG.integers(-128, 128, (10, 6)).astype(np.int8)
    M, S = [5000, 1, 77777, 300, 2, 9999], [20, 0, 25, 14, 3, 18]
    ctx = {"a": a, "w": w}
    getCustomOp(helper.make_node("IntMatMul", ["a", "w"], ["acc"], domain=DOMAIN)
                ).execute_node(ctx, None)
    rq = getCustomOp(helper.make_node("Requant", ["acc"], ["y"], domain=DOMAIN, multipliers=M,
                                      shifts=S, zero_point=-3))
    assert rq.verify_node() == [] and rq.per_channel
    rq.execute_node(ctx, None)
    assert np.array_equal(ctx["y"].astype(np.int64), g.int8_mvu(w.T, a, M, S, zero_point=-3))
    bad = getCustomOp(helper.make_node("Requant", ["acc"], ["y"], domain=DOMAIN,
                                       multipliers=M, shifts=S[:2]))
    assert any("shifts" in m for m in bad.verify_node())


@pytest.mark.parametrize("signed, zp, relu", [(1, 0, 0), (0, 100, 1), (1, -20, 1), (0, 0, 0)])
def test_equals_the_dialect_int_matmul_then_requant(signed, zp, relu):
    """The compiler's IntMatMul → Requant pair, executed by qonnx, gives the same codes."""
    a = RNG.integers(0, 256, (5, 24)).astype(np.uint8)
    w = RNG.integers(-128, 128, (24, 7)).astype(np.int8)  # (in, out) as ONNX holds it
    bias = RNG.integers(-30000, 30000, 7).astype(np.int32)
    ctx = {"a": a, "w": w, "b": bias}
    getCustomOp(helper.make_node("IntMatMul", ["a", "w", "b"], ["acc"], domain=DOMAIN,
                                 a_signed=0)).execute_node(ctx, None)
    getCustomOp(helper.make_node("Requant", ["acc"], ["y"], domain=DOMAIN, multiplier=23456,
                                 shift=24, signed=signed, zero_point=zp,
                                 relu=relu)).execute_node(ctx, None)
    out = QType(8, signed=bool(signed))
    got = g.int8_mvu(w.T, a, 23456, 24, bias, UINT8, out, zp, bool(relu))
    assert np.array_equal(got, ctx["y"].astype(np.int64))


def test_extremes_saturate_and_the_accumulator_is_exact():
    p = g.Int8MvuParams(lanes=4, rows=2, cols=8, bias=True)
    W = np.full((2, 8), -128)
    X = np.full(8, -128)
    bias = np.array([(1 << 31) - 1, -(1 << 31)])
    acc = g.int8_mvu_acc(W, X, bias)
    assert acc.tolist() == [8 * 128 * 128 + (1 << 31) - 1, 8 * 128 * 128 - (1 << 31)]
    assert max(abs(int(v)) for v in acc).bit_length() < p.acc_width
    assert g.int8_mvu(W, X, 1, 0, bias).tolist() == [127, -128]
    assert g.int8_mvu(W, X, 1, 0, bias, out=UINT8).tolist() == [255, 0]


def test_relu_clips_at_the_zero_point_and_the_zero_point_offsets():
    W = np.array([[1, 0], [-1, 0]])
    X = np.array([50, 0])
    assert g.int8_mvu(W, X, 1, 0, zero_point=10).tolist() == [60, -40]
    assert g.int8_mvu(W, X, 1, 0, zero_point=10, relu=True).tolist() == [60, 10]
    assert g.int8_mvu(W, X, 1, 0, out=UINT8, zero_point=128).tolist() == [178, 78]
    with pytest.raises(HwsimError, match="zero_point"):
        g.int8_mvu(W, X, 1, 0, zero_point=200)


def test_weight_and_bias_words():
    W = RNG.integers(-128, 128, (3, 8))
    words = g.weight_words(W, 4)
    assert len(words) == 6
    back = [unpack_lanes(w, 8, 4, signed=True) for w in words]
    assert np.array_equal(np.array(back).reshape(3, 8), W)
    assert g.bias_words([-1, 5]) == [0xFFFFFFFF, 5]
    with pytest.raises(HwsimError):
        g.weight_words(W, 3)
    with pytest.raises(HwsimError):
        g.bias_words([1 << 31])


@pytest.mark.parametrize("kw, match", [
    (dict(lanes=3, cols=8), "must divide"), (dict(lanes=0), "lanes"),
    (dict(relu=1), "relu must be true or false"), (dict(zero_point=128), "zero_point"),
    (dict(out_signed=False, zero_point=-1), "zero_point"), (dict(rounding="up"), "rounding"),
    (dict(mult_bits=33), "mult_bits"), (dict(shift_bits=7), "shift_bits")])
def test_params_are_validated(kw, match):
    with pytest.raises(HwsimError, match=match):
        g.Int8MvuParams(**{"lanes": 4, "rows": 2, "cols": 8, **kw})


def test_formats_follow_the_params():
    p = g.Int8MvuParams(act_signed=False, out_signed=False, rounding="half_up")
    assert p.act == UINT8 and p.out == QType(8, signed=False, rounding=Rounding.HALF_UP)


@pytest.mark.parametrize("lanes, cols", [(1, 8), (8, 8), (4, 16)])
def test_cycle_formulas_and_actions(lanes, cols):
    p = g.Int8MvuParams(lanes=lanes, rows=5, cols=cols)
    c = cols // lanes
    assert g.latency_cycles(p) == c + 5 * c + g.PIPELINE_DEPTH
    assert g.stream_cycles(p, 3) - g.stream_cycles(p, 2) == g.interval_cycles(p) == c + 5 * c
    a = g.action_counts(p, 2)
    assert a["mac"] == 2 * 5 * cols and a["acc_add"] == 2 * 5 * c
    assert a["cycles"] == g.stream_cycles(p, 2) and a["bias_add"] == 0
    assert g.storage_bits(p) == 5 * cols * 8 + cols * 8


def test_wide_output_is_the_accumulators():
    """``out_bits = 32`` with ``M = 1, S = 0``: the int32 codes are the exact accumulators
    (a float classifier head's hardware); other widths are refused."""
    rng = np.random.default_rng(3)
    p = g.Int8MvuParams(lanes=4, rows=5, cols=144, act_signed=False, bias=True, out_bits=32)
    w, x = rng.integers(-128, 128, (5, 144)), rng.integers(0, 256, (2, 144))
    b = rng.integers(-2**20, 2**20, 5)
    y = g.int8_mvu(w, x, 1, 0, b, p.act, p.out)
    assert p.out.width == 32 and np.array_equal(y, x @ w.T + b)
    assert g.action_counts(p)["out_bits"] == 32 * 5
    with pytest.raises(HwsimError, match="out_bits"):
        g.Int8MvuParams(out_bits=16)
