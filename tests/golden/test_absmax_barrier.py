"""Golden absmax barrier: the contract against float64, corner tokens, errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import absmax_barrier as g
from quant.qtype import QType, Rounding


@settings(max_examples=200, deadline=None)
@given(w=st.integers(2, 32), n=st.integers(1, 24), seed=st.integers(0, 2**32 - 1),
       rounding=st.sampled_from(list(Rounding)))
def test_contract_against_float64(w, n, seed, rounding):
    p = g.AbsmaxBarrierParams(length=n, in_width=w, out=QType(8, rounding=rounding))
    rng = np.random.default_rng(seed)
    a = rng.integers(-(2 ** (w - 1)), 2 ** (w - 1), (3, n))
    q, m = g.absmax_barrier(a, p)
    assert np.array_equal(m, np.abs(a).max(axis=1))
    ref = np.where(m[:, None] > 0, np.round(a * 127.0 / np.maximum(m, 1)[:, None]), 0)
    assert np.abs(q - ref).max() <= 1  # float64 is exact enough here: |a·127/m| ≤ 127
    assert np.abs(q).max() <= 127
    if rounding not in (Rounding.FLOOR, Rounding.TRUNC):
        peak = np.abs(a) == m[:, None]
        assert np.all(np.abs(q[peak & (m[:, None] > 0)]) == 127)


def test_exact_integer_definition():
    p = g.AbsmaxBarrierParams(length=3, in_width=8)
    a = np.array([100, -7, 3])
    r = (127 << 8) // 100
    q, m = g.absmax_barrier(a, p)
    assert int(m) == 100 and r == g.reciprocal(100, p)
    want = [int(np.round(v * r / 256)) for v in a]  # products are exact in float64
    assert q.tolist() == want == [127, -9, 4]


def test_zero_token_is_zero():
    p = g.AbsmaxBarrierParams(length=4, in_width=10)
    q, m = g.absmax_barrier(np.zeros(4, dtype=np.int64), p)
    assert q.tolist() == [0, 0, 0, 0] and int(m) == 0


def test_formulas():
    p = g.AbsmaxBarrierParams(length=256, in_width=24)
    assert p.F == 24 and p.recip_bits == (127 << 24).bit_length() == 31
    assert g.latency_cycles(p) == 256 + 31 + 256 + g.PIPELINE_DEPTH
    assert g.action_counts(p, tokens=2)["div_step"] == 62


@pytest.mark.parametrize("kwargs, message", [
    ({"length": 0}, "length must be a positive integer"),
    ({"in_width": 60}, "in_width must be 2 … 48"),
    ({"frac_bits": 0}, "frac_bits must be 1 … 48"),
    ({"mul_style": "booth"}, "mul_style must be 'dsp' or 'shift_add'"),
    ({"out": QType(8, signed=False)}, "output must be a signed type"),
])
def test_bad_parameters(kwargs, message):
    with pytest.raises(HwsimError, match=message):
        g.AbsmaxBarrierParams(**kwargs)


def test_bad_input():
    p = g.AbsmaxBarrierParams(length=2, in_width=8)
    with pytest.raises(HwsimError, match="expects 2 accumulators"):
        g.absmax_barrier([1, 2, 3], p)
    with pytest.raises(HwsimError, match="outside int8"):
        g.absmax_barrier([1, 200], p)
