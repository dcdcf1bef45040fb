"""Golden multi-threshold: the table equals the code function it was built from."""

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common import threshold as g


@pytest.mark.parametrize("function", sorted(g.FUNCTIONS))
def test_dense_table_equals_the_function_everywhere(function):
    """On a 16-bit range (built densely) every input gives Q(F(acc · s))."""
    p = g.table_for(function, 2e-4, 0.02, 3, True, in_bits=16)
    x = np.arange(-2 ** 15, 2 ** 15)
    q = g.quantizer(0.02, 3, True)
    assert np.array_equal(g.threshold(x, p), q(g.FUNCTIONS[function](x * 2e-4)))
    assert len(p.breakpoints) <= 300


@pytest.mark.parametrize("function", ["gelu", pytest.param("silu", marks=pytest.mark.slow),
                                      pytest.param("sigmoid", marks=pytest.mark.slow)])
def test_wide_range_bisection_equals_the_function(function):
    """A 32-bit range (grid + bisection + dense around the turning point) matches the
    function on random inputs and on every integer around each breakpoint and the dip."""
    s = 3e-9
    p = g.table_for(function, s, 0.005, 0, True, in_bits=32)
    q = g.quantizer(0.005, 0, True)
    rng = np.random.default_rng(1)
    b = np.asarray(p.breakpoints)
    x = np.concatenate([rng.integers(-2 ** 31, 2 ** 31, 200_000),
                        (b[:, None] + np.arange(-3, 4)).ravel(),
                        np.arange(int(-1.5 / s), int(-0.3 / s), 97)])
    x = np.clip(x, -2 ** 31, 2 ** 31 - 1)
    assert np.array_equal(g.threshold(x, p), q(g.FUNCTIONS[function](x * s)))


def test_monotone_functions_have_at_most_255_breakpoints():
    for f in ("sigmoid", "tanh", "leaky_relu"):
        p = g.table_for(f, 1e-3, 0.01, 0, True, in_bits=16)
        assert len(p.breakpoints) <= 255
        assert list(p.codes) == sorted(p.codes)


def test_threshold_counts_breakpoints_passed():
    p = g.ThresholdParams(lanes=1, in_bits=8, breakpoints=(-5, 0, 7), codes=(10, -3, 4, 9))
    x = np.array([-128, -6, -5, -1, 0, 6, 7, 127])
    assert g.threshold(x, p).tolist() == [10, 10, -3, -3, 4, 4, 9, 9]


@pytest.mark.parametrize("kw, msg", [
    (dict(breakpoints=(3, 3), codes=(0, 1, 2)), "strictly increasing"),
    (dict(breakpoints=(1,), codes=(0,)), "codes"),
    (dict(in_bits=8, breakpoints=(200,), codes=(0, 1)), "lie in"),
    (dict(out_signed=False, breakpoints=(1,), codes=(0, -1)), "outside"),
    (dict(in_bits=33), "in_bits"),
])
def test_bad_params_raise(kw, msg):
    with pytest.raises(HwsimError, match=msg):
        g.ThresholdParams(**kw)


def test_inputs_outside_the_range_raise():
    p = g.ThresholdParams(in_bits=8)
    with pytest.raises(HwsimError):
        g.threshold(np.array([300]), p)


def test_cycle_formulas():
    p = g.ThresholdParams()
    assert g.latency_cycles(p) == g.PIPELINE_DEPTH == 3
    assert g.stream_cycles(p, 10) == 13 and g.interval_cycles(p) == 1
