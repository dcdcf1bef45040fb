"""Golden absmax barrier: the rule choice measured, the contract, corner tokens, errors."""

from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.errors import HwsimError
from hwsim.golden.common import attention_head as ah
from hwsim.golden.common import softmax_int as sm
from hwsim.golden.vitallm import absmax_barrier as g
from hwsim.golden.vitallm import layer_codes as lc
from quant.qtype import INT8, QType, Rounding, round_shift


def exact(a) -> np.ndarray:
    """BitNet's quantizer on the integer row, exact: ``round(a · 127 / m)`` (half even)."""
    m = int(np.abs(a).max())
    return np.array([round(Fraction(int(v) * 127, m)) if m else 0 for v in a])


def former_rule(a, F: int) -> np.ndarray:
    """The barrier's former rule, kept here only to measure it: ``r = floor(127·2**F / m)``,
    ``q = round_half_even(a · r / 2**F)``."""
    m = int(np.abs(a).max())
    r = (127 << F) // m if m else 0
    return INT8.fit(round_shift(np.asarray(a, dtype=np.int64) * r, F, Rounding.HALF_EVEN))


def rule(a) -> np.ndarray:
    return g.absmax_barrier(a, g.AbsmaxBarrierParams(length=len(a), in_width=24))[0]


def off_by(rows, quantizer) -> tuple[int, int]:
    """(codes that differ from the exact quantizer, largest difference) over ``rows``."""
    d = np.concatenate([np.abs(quantizer(a) - exact(a)) for a in rows])
    return int((d > 0).sum()), int(d.max())


def integer_model_rows() -> list[np.ndarray]:
    """The rows the integer BitNet model feeds its activation quantizer (attention RMSNorm, FFN
    RMSNorm, FFN SubLN of both layers, 32 tokens): ``NORM_OUT`` codes."""
    from models.bitnet.config import BitNetConfig
    from models.bitnet.integer_model import build_integer_model, integer_forward
    from models.bitnet.model import BitNetModel

    cfg = BitNetConfig("micro", hidden=64, ffn=128, layers=2, heads=4, kv_heads=2, vocab=256,
                       max_seq=32, source="tests")
    torch.manual_seed(0)
    model = BitNetModel(cfg, quantized=True).eval()
    rng = np.random.default_rng(0)
    im = build_integer_model(model, rng.integers(0, 256, (4, 16)).astype(np.int64))
    cap = {}
    integer_forward(im, rng.integers(0, 256, 32), capture=cap)
    rows = []
    for li, L in enumerate(im.layers):
        c = cap[li]
        rows += [*lc.rms_rows(c["x_in"], L.attn_norm), *lc.rms_rows(c["x_attn"], L.ffn_norm),
                 *lc.rms_rows(c["prod"], L.ffn_sub, c["ffn_amax"])]
    return rows


def test_rule_choice_measured():
    """The numbers in the module docstring of hwsim.golden.vitallm.absmax_barrier: the
    normalized-reciprocal rule is closer to BitNet's quantizer than the former barrier rule."""
    # worst case before rounding, at |a| = m (the largest gap), every 7919th 24-bit m
    ms = range(1, 1 << 23, 7919)
    gap_former = max(((127 << 24) % m) / 2**24 for m in ms)
    gap_rule = max(float(127 * (1 - Fraction(m * int(sm.reciprocal(m, 16)[0]),
                                              1 << int(sm.reciprocal(m, 16)[1])))) for m in ms)
    assert 0.48 < gap_former < 0.5 and 0.0037 < gap_rule < 254 / 2**16
    # random rows: widths 2 … 24 bits, half of them with many small elements
    rng = np.random.default_rng(0)
    rows = []
    for t in range(1500):
        bits = int(rng.integers(2, 25))
        a = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), 64)
        rows.append((a * rng.random(64) ** 3).astype(np.int64) if t % 2 else a)
    n_rule, d_rule = off_by(rows, rule)
    n_former, d_former = off_by(rows, lambda a: former_rule(a, 24))
    print(f"random: {n_rule} vs {n_former} of {64 * len(rows)}")
    assert d_rule == d_former == 1 and 3 * n_rule < n_former
    # the integer model's own rows
    rows = integer_model_rows()
    n_rule, d_rule = off_by(rows, rule)
    n_former, d_former = off_by(rows, lambda a: former_rule(a, 24))
    print(f"integer model: {n_rule} vs {n_former} of {sum(len(a) for a in rows)}")
    assert d_rule <= 1 and d_former <= 1 and 2 * n_rule < n_former


def test_one_rule_for_barrier_and_activation_quantizer():
    rng = np.random.default_rng(5)
    y = rng.integers(-(1 << 23), 1 << 23, (6, 32))
    q, m = g.absmax_barrier(y, g.AbsmaxBarrierParams(length=32, in_width=24))
    aq, am = lc.act_quant(y)
    assert np.array_equal(q, aq) and np.array_equal(m, am)
    assert lc.ACT_RECIP_BITS == g.RECIP_BITS


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
    k = 100 .bit_length() - 1 + 16
    r = (1 << k) // 100
    q, m = g.absmax_barrier(a, p)
    assert int(m) == 100 and (r, k) == tuple(int(v) for v in sm.reciprocal(100, 16))
    want = [int(np.round(v * r * 127 / 2**k)) for v in a]  # products are exact in float64
    assert q.tolist() == want == [127, -9, 4]


def test_wide_rows_are_exact():
    """47-bit accumulators: the products pass 2**62 and are computed in Python integers."""
    p = g.AbsmaxBarrierParams(length=3, in_width=47)
    a = np.array([(1 << 46) - 1, -(1 << 44) - 5, 777])
    q, m = g.absmax_barrier(a, p)
    r, k = (int(v) for v in sm.reciprocal(int(m), 16))
    want = [round(Fraction(int(v) * r * 127, 1 << k)) for v in a]
    assert q.tolist() == want and q[0] == 127
    assert np.array_equal(ah.absmax_requant(a[None], INT8, 16)[0][0], q)


def test_zero_token_is_zero():
    p = g.AbsmaxBarrierParams(length=4, in_width=10)
    q, m = g.absmax_barrier(np.zeros(4, dtype=np.int64), p)
    assert q.tolist() == [0, 0, 0, 0] and int(m) == 0


def test_formulas():
    p = g.AbsmaxBarrierParams(length=256, in_width=24, lanes=4)
    assert p.chunks == 64 and p.r_bits == 17 and p.div_cycles == 18
    assert g.latency_cycles(p) == 64 + 1 + 18 + 1 + 2 + 63 == g.interval_cycles(p)
    assert g.stream_cycles(p, 3) == 3 * g.latency_cycles(p)
    assert g.action_counts(p, tokens=2)["div_step"] == 34


@pytest.mark.parametrize("kwargs, message", [
    ({"length": 0}, "length must be a positive integer"),
    ({"in_width": 48}, "in_width must be 2 … 47"),
    ({"in_width": 40, "recip_bits": 24}, "recip_bits must be 1 … 23"),
    ({"length": 6, "lanes": 4}, "lanes \\(4\\) must divide length"),
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
