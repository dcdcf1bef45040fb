"""Golden concatenation: every code lands where ``np.concatenate`` of Python lists puts it;
parameters and shapes are checked."""

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common import concat as g


def test_codes_in_order_per_vector():
    p = g.ConcatParams(lanes=1, len_a=2, len_b=3)
    a = [[1, 2], [-128, 127]]
    b = [[3, 4, 5], [0, -1, 7]]
    y = g.concat(a, b, p)
    assert y.tolist() == [ra + rb for ra, rb in zip(a, b, strict=True)]
    assert y.dtype == np.int64


def test_leading_shape_kept():
    p = g.ConcatParams(lanes=2, len_a=2, len_b=4, signed=False)
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 256, (2, 3, 2)), rng.integers(0, 256, (2, 3, 4))
    y = g.concat(a, b, p)
    assert y.shape == (2, 3, 6)
    assert np.array_equal(y[..., :2], a) and np.array_equal(y[..., 2:], b)


def test_formulas():
    p = g.ConcatParams(lanes=2, len_a=4, len_b=6)
    assert (p.beats_a, p.beats_b, p.beats) == (2, 3, 5)
    assert g.latency_cycles(p) == 1 and g.interval_cycles(p) == 5
    assert g.stream_cycles(p, 3) == 16
    acts = g.action_counts(p, 2)
    assert acts["out_bits"] == 8 * 20 and acts["cycles"] == g.stream_cycles(p, 2)


@pytest.mark.parametrize("kwargs, match", [
    (dict(lanes=3, len_a=3, len_b=4), "must divide"),
    (dict(len_a=0), "len_a"),
    (dict(lanes=True), "lanes"),
    (dict(signed=1), "signed"),
])
def test_bad_params(kwargs, match):
    with pytest.raises(HwsimError, match=match):
        g.ConcatParams(**kwargs)


def test_bad_codes_and_shapes():
    p = g.ConcatParams(lanes=1, len_a=2, len_b=2)
    with pytest.raises(HwsimError, match="outside"):
        g.concat([[0, 128]], [[0, 0]], p)
    with pytest.raises(HwsimError, match="one leading shape"):
        g.concat([[0, 1]], [[0, 0], [1, 1]], p)
    with pytest.raises(HwsimError, match="one leading shape"):
        g.concat([[0, 1, 2]], [[0, 0]], p)
