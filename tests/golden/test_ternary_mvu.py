"""Golden ternary MVU: exact integer math, I2_S packing, formulas, errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import ternary_mvu as g
from quant.qtype import INT8, QType, Rounding, quantize_multiplier


def _rand(rng, rows, cols, n=1):
    return rng.integers(-1, 2, (rows, cols)), rng.integers(-128, 128, (n, cols))


def test_exact_against_python_integers():
    rng = np.random.default_rng(1)
    W, X = _rand(rng, 7, 13, 3)
    acc = g.ternary_mvu_acc(W, X)
    want = [[sum(int(w) * int(x) for w, x in zip(row, v, strict=True)) for row in W] for v in X]
    assert acc.tolist() == want


def test_requantized_output_within_one_lsb_of_float_reference():
    """Contract: ≤ 1 LSB from round(s·W·x), only where M·2**-S rounds the real scale."""
    rng = np.random.default_rng(2)
    W, X = _rand(rng, 64, 96, 8)
    real = 100.0 / np.abs(X @ W.T).max()
    m, s = quantize_multiplier(real)
    y = g.ternary_mvu(W, X, m, s)
    ref = np.clip(np.round((X @ W.T) * real), -128, 127)
    assert np.abs(y - ref).max() <= 1
    exact = np.clip(np.round((X @ W.T) * (m / 2**s)), -128, 127)  # float64 is exact here
    assert np.array_equal(y, exact)


@pytest.mark.parametrize("cols", [1, 4, 5, 255, 256])
def test_i2s_round_trip(cols):
    rng = np.random.default_rng(cols)
    W = rng.integers(-1, 2, (3, cols))
    packed = g.pack_i2s(W)
    assert packed.dtype == np.uint8 and packed.shape == (3, -(-cols // 4))
    assert np.array_equal(g.unpack_i2s(packed, cols), W)


def test_i2s_code_values():
    # −1, 0, +1, +1 → codes 0, 1, 2, 2 → 0b10_10_01_00
    assert g.pack_i2s(np.array([[-1, 0, 1, 1]])).tolist() == [[0b10100100]]
    with pytest.raises(HwsimError, match="code 3"):
        g.unpack_i2s(np.array([[0b11]], dtype=np.uint8), 1)


def test_weight_words_match_i2s_bytes():
    rng = np.random.default_rng(3)
    W = rng.integers(-1, 2, (4, 32))
    words = g.weight_words(W, 8)  # 8 lanes = 16 bits = 2 I2_S bytes
    packed = g.pack_i2s(W)
    assert words == [int.from_bytes(packed[r, 2 * k:2 * k + 2].tobytes(), "little")
                     for r in range(4) for k in range(4)]


@settings(max_examples=100, deadline=None)
@given(rows=st.integers(1, 9), cols=st.integers(1, 40), seed=st.integers(0, 2**31))
def test_accumulator_width_is_sufficient_and_tight(rows, cols, seed):
    p = g.TernaryMvuParams(lanes=1, rows=rows, cols=cols)
    lim = 2 ** (p.acc_width - 1)
    worst = cols * 128
    assert -lim <= -worst and worst < lim  # the worst case fits …
    assert worst >= 2 ** (p.acc_width - 2)  # … and one bit fewer would not
    W = np.full((rows, cols), -1)
    X = np.full((1, cols), -128)
    assert g.ternary_mvu_acc(W, X).max() == worst


def test_cycle_formulas():
    p = g.TernaryMvuParams(lanes=16, rows=256, cols=256)
    assert g.interval_cycles(p) == 16 + 256 * 16
    assert g.latency_cycles(p) == 16 + 256 * 16 + g.PIPELINE_DEPTH
    assert g.stream_cycles(p, 3) == 3 * (16 + 4096) + g.PIPELINE_DEPTH
    assert g.ideal_cycles(p) / g.latency_cycles(p) >= 0.95


def test_deep_pipeline_adds_stages_not_interval():
    # a tree of n terms has ceil(log2 n) levels, a register after every second but the last pair
    assert [g.tree_registers(n) for n in (1, 2, 4, 5, 16, 17, 64, 256)] == [0, 0, 0, 1, 1, 2, 2, 3]
    short = g.TernaryMvuParams(lanes=16, rows=256, cols=256)
    deep = g.TernaryMvuParams(lanes=16, rows=256, cols=256, pipeline="deep")
    assert g.interval_cycles(deep) == g.interval_cycles(short)
    # memory register, tree (1 inner + sum), multiplier (16 terms: 1 inner), rounding register
    assert g.pipeline_depth(deep) == g.PIPELINE_DEPTH + 5
    assert g.latency_cycles(deep) == g.latency_cycles(short) + 5
    assert g.action_counts(deep)["cycles"] == g.latency_cycles(deep)


def test_action_counts_exact_with_weights():
    p = g.TernaryMvuParams(lanes=2, rows=2, cols=4)
    W = np.array([[1, 0, -1, 0], [0, 0, 0, 1]])
    c = g.action_counts(p, vectors=3, w=W)
    assert c["ternary_add"] == 9 and c["ternary_skip"] == 15
    assert c["weight_read_bits"] == 3 * 2 * 8
    assert g.action_counts(p)["ternary_add"] == 8


@pytest.mark.parametrize("kwargs, message", [
    ({"lanes": 3, "cols": 16}, r"lanes \(3\) must divide cols \(16\)"),
    ({"rows": 0}, "rows must be at least 1"),
    ({"cols": 2**57, "lanes": 1}, "accumulator would need 66 bits"),
    ({"lanes": 2.5}, "lanes must be an integer"),
    ({"act": QType(8, signed=False)}, "activations must be signed integers"),
    ({"pipeline": "fast"}, "pipeline must be short or deep, not 'fast'"),
])
def test_impossible_parameters(kwargs, message):
    with pytest.raises(HwsimError, match=message):
        g.TernaryMvuParams(**kwargs)


def test_bad_weights_and_activations():
    with pytest.raises(HwsimError, match=r"weight code 2 at \(0, 1\) is not ternary"):
        g.ternary_mvu([[0, 2]], [1, 1], 1, 0)
    with pytest.raises(HwsimError, match="outside int8"):
        g.ternary_mvu([[0, 1]], [1, 300], 1, 0)
    with pytest.raises(HwsimError, match="3 columns, weights have 2"):
        g.ternary_mvu([[0, 1]], [1, 1, 1], 1, 0)


def test_output_rounding_mode_is_honoured():
    W, X = np.array([[1]]), np.array([[3]])
    # 3 · 1 / 2 = 1.5 → half-even 2, floor 1
    assert g.ternary_mvu(W, X, 1, 1, out=INT8).tolist() == [[2]]
    assert g.ternary_mvu(W, X, 1, 1, out=QType(8, rounding=Rounding.FLOOR)).tolist() == [[1]]
