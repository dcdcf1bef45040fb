"""The LUT nonlinearity golden: table order, validation, named-function tables, formulas."""

import itertools
import math

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common import lut_act as g

RNG = np.random.default_rng(5)


def _random_table(out_signed):
    lo, hi = (-128, 127) if out_signed else (0, 255)
    return tuple(int(v) for v in RNG.integers(lo, hi + 1, 256))


@pytest.mark.parametrize("in_signed, out_signed", [(True, True), (False, False), (True, False),
                                                   (False, True)])
def test_every_code_reads_its_entry_in_code_order(in_signed, out_signed):
    p = g.LutActParams(lanes=2, in_signed=in_signed, out_signed=out_signed,
                       table=_random_table(out_signed))
    lo = -128 if in_signed else 0
    want = {lo + i: v for i, v in enumerate(p.table)}  # table[i] ↔ input code lo + i
    codes = RNG.integers(lo, lo + 256, (3, 5, 7))
    got = g.lut_act(codes, p)
    assert got.shape == codes.shape and got.dtype == np.int64
    assert got.ravel().tolist() == [want[int(c)] for c in codes.ravel()]
    every = np.arange(lo, lo + 256)
    assert g.lut_act(every, p).tolist() == list(p.table)


def test_input_codes_outside_the_range_raise():
    p = g.LutActParams(in_signed=False)
    with pytest.raises(HwsimError, match="outside"):
        g.lut_act([0, 256], g.LutActParams(in_signed=False, table=tuple(range(-128, 128))))
    with pytest.raises(HwsimError, match="outside"):
        g.lut_act([-129], g.LutActParams())
    with pytest.raises(HwsimError, match="integers"):
        g.lut_act([0.5], p)


def test_a_list_or_array_table_becomes_a_tuple():
    """Plans round-trip params through JSON: the table comes back as a list."""
    table = list(range(256))
    p = g.LutActParams(out_signed=False, table=table)
    assert isinstance(p.table, tuple) and p.table == tuple(table)
    q = g.LutActParams(out_signed=False, table=np.arange(256))
    assert q == p and hash(q) == hash(p)


@pytest.mark.parametrize("kw, match", [
    (dict(table=tuple(range(255))), "256 output codes"),
    (dict(table=(0,) * 257), "256 output codes"),
    (dict(table=5), "256 output codes"),
    (dict(table=(128,) + (0,) * 255), r"entry 0 \(input code -128\) is 128, outside"),
    (dict(out_signed=False, table=(0,) * 255 + (-1,)), r"entry 255 .* is -1, outside"),
    (dict(table=(0.5,) * 256), "integers"),
    (dict(table=(True,) * 256), "integers"),
    (dict(lanes=0), "lanes"), (dict(lanes=True), "lanes"),
    (dict(in_signed=1), "in_signed must be true or false"),
    (dict(out_signed="yes"), "out_signed must be true or false")])
def test_params_are_validated(kw, match):
    with pytest.raises(HwsimError, match=match):
        g.LutActParams(**kw)


def _ref(function, x):
    """Python scalars: the textbook definitions."""
    return {"identity": x, "relu": max(x, 0.0), "sigmoid": 1 / (1 + math.exp(-x)),
            "tanh": math.tanh(x), "gelu": 0.5 * x * (1 + math.erf(x / math.sqrt(2))),
            "silu": x / (1 + math.exp(-x))}[function]


@pytest.mark.parametrize("function", sorted(g.FUNCTIONS))
@pytest.mark.parametrize("in_signed, in_zero, out_signed, out_zero, in_scale, out_scale", [
    (True, 0, True, 0, 0.05, 0.02), (False, 128, False, 20, 0.031, 1 / 200),
    (True, -7, False, 0, 0.1, 1 / 256), (False, 3, True, -100, 0.011, 0.004)])
def test_table_for_equals_a_scalar_reference(function, in_signed, in_zero, out_signed, out_zero,
                                             in_scale, out_scale):
    table = g.table_for(function, in_scale, in_zero, out_scale, out_zero, in_signed, out_signed)
    lo = -128 if in_signed else 0
    olo, ohi = (-128, 127) if out_signed else (0, 255)
    # Python's round() is half to even, as QuantizeLinear
    want = [min(max(round(_ref(function, (c - in_zero) * in_scale) / out_scale) + out_zero, olo),
                ohi) for c in range(lo, lo + 256)]
    assert list(table) == want
    g.LutActParams(in_signed=in_signed, out_signed=out_signed, table=table)  # valid


def test_table_for_shapes_the_named_functions():
    sig = g.table_for("sigmoid", 0.05, 0, 1 / 256, 0, True, False)
    assert sig[0] == 0 and sig[128] == 128 and sig[-1] == 255  # σ(0) = 0.5, saturates high
    assert all(a <= b for a, b in itertools.pairwise(sig))  # monotone
    relu = g.table_for("relu", 0.1, 0, 0.1, 0)
    assert relu == tuple([0] * 128 + list(range(128)))
    assert g.table_for("identity", 0.1, 0, 0.1, 0) == tuple(range(-128, 128))
    gelu = g.table_for("gelu", 0.05, 0, 0.05, 0)
    assert min(gelu) < 0 and gelu[128] == 0  # GELU dips below zero, GELU(0) = 0


@pytest.mark.parametrize("args, match", [
    (("cosh", 0.1, 0, 0.1, 0), "not one of"), (("tanh", 0.0, 0, 0.1, 0), "in_scale"),
    (("tanh", 0.1, 0, -1.0, 0), "out_scale"), (("tanh", float("nan"), 0, 0.1, 0), "in_scale"),
    (("tanh", 0.1, 128, 0.1, 0), "in_zero"), (("tanh", 0.1, 0, 0.1, -1, True, False), "out_zero"),
    (("tanh", 0.1, 0.5, 0.1, 0), "in_zero")])
def test_table_for_rejects_bad_arguments(args, match):
    with pytest.raises(HwsimError, match=match):
        g.table_for(*args)


@pytest.mark.parametrize("lanes", [1, 3, 8])
def test_cycle_formulas_and_actions(lanes):
    p = g.LutActParams(lanes=lanes)
    assert g.latency_cycles(p) == g.PIPELINE_DEPTH == 1
    assert g.stream_cycles(p, 1) == 2 and g.stream_cycles(p, 10) == 11
    assert g.stream_cycles(p, 11) - g.stream_cycles(p, 10) == g.interval_cycles(p) == 1
    a = g.action_counts(p, 5)
    assert a == {"lut_read": 5 * lanes, "lut_read_bits": 40 * lanes, "out_bits": 40 * lanes,
                 "cycles": 6}
    assert g.storage_bits(p) == lanes * 256 * 8


@pytest.mark.parametrize("in_signed, out_signed", [(1, 1), (0, 1), (1, 0)])
def test_equals_the_dialect_lut_act(in_signed, out_signed):
    """The compiler's LutAct, executed as qonnx executes it, gives the same codes."""
    from onnx import helper
    from qonnx.custom_op.registry import getCustomOp

    from hwsim.compile.dialect import DOMAIN

    table = _random_table(bool(out_signed))
    lo = -128 if in_signed else 0
    x = RNG.integers(lo, lo + 256, (3, 17)).astype(np.int8 if in_signed else np.uint8)
    ctx = {"x": x}
    node = helper.make_node("LutAct", ["x"], ["y"], domain=DOMAIN, table=list(table),
                            in_signed=in_signed, out_signed=out_signed)
    getCustomOp(node).execute_node(ctx, None)
    p = g.LutActParams(in_signed=bool(in_signed), out_signed=bool(out_signed), table=table)
    assert ctx["y"].dtype == (np.int8 if out_signed else np.uint8)
    assert np.array_equal(ctx["y"].astype(np.int64), g.lut_act(x, p))
