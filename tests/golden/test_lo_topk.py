"""Leading-one surrogate and comparison-free top-K against direct definitions."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import lo_topk as g


def test_leading_one_all_int8():
    v = np.arange(-128, 128)
    lo = g.leading_one(v)
    for x, l in zip(v, lo, strict=True):
        assert l == (-1 if x == 0 else abs(int(x)).bit_length() - 1)


def test_surrogate_bounds_each_product():
    """Every term has the product's sign and lies in (|q·k|/4, |q·k|]."""
    q = np.arange(-128, 128)
    for k in (-128, -77, -1, 0, 1, 5, 127):
        est = np.array([g.lo_scores(np.array([a]), np.array([[k]]))[0] for a in q])
        true = q * k
        assert np.all(np.sign(est) == np.sign(true))
        nz = true != 0
        assert np.all(np.abs(est[nz]) <= np.abs(true[nz]))
        assert np.all(4 * np.abs(est[nz]) > np.abs(true[nz]))


@settings(max_examples=300, deadline=None)
@given(m=st.integers(1, 40), data=st.data())
def test_radix_topk_equals_stable_sort(m, data):
    keep = data.draw(st.integers(1, m))
    width = data.draw(st.integers(2, 12))
    lim = 1 << (width - 1)
    # few distinct values so that ties are common
    scores = np.array(data.draw(st.lists(st.integers(-lim, lim - 1), min_size=m, max_size=m)))
    mask = g.topk_radix(scores, keep, width)
    order = np.argsort(-scores, kind="stable")  # larger first, ties → lower index
    want = np.zeros(m, dtype=bool)
    want[order[:keep]] = True
    assert np.array_equal(mask, want)


def test_keep_all_is_dense():
    rng = np.random.default_rng(0)
    p = g.LoTopKParams(tokens=9, head_dim=4, keep=9)
    s = g.lo_scores(rng.integers(-128, 128, 4), rng.integers(-128, 128, (9, 4)))
    assert g.topk_radix(s, p.keep, p.score_width).all()


def test_kv_traffic_falls_by_one_minus_k_over_m():
    c = g.action_counts(g.LoTopKParams(tokens=128, head_dim=64, keep=16))
    assert 1 - c["kv_read_bytes_sparse"] / c["kv_read_bytes_dense"] == pytest.approx(1 - 16 / 128)


@pytest.mark.parametrize("kwargs, message", [
    ({"keep": 0}, "keep must be a positive integer"),
    ({"tokens": 4, "keep": 5}, r"keep \(K=5\) cannot exceed tokens \(M=4\)"),
])
def test_bad_parameters(kwargs, message):
    with pytest.raises(HwsimError, match=message):
        g.LoTopKParams(**kwargs)
