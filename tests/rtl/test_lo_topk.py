"""Fast tier: the Amaranth LoTopK selector against the golden surrogate and radix top-K."""

import numpy as np
import pytest

from hwsim.golden.common.lanes import pack_lanes
from hwsim.golden.vitallm import lo_topk as g
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from rtl.vitallm.lo_topk import LoTopK


def rtl_select(p, q, K, idle=0.0, stall=0.0, seed=0):
    dut = LoTopK(p)
    qs = Source(dut.q, [pack_lanes(q, 8)])
    ks = Source(dut.k, [pack_lanes(row, 8) for row in K], idle=idle)
    out = Sink(dut.sel, 1, stall=stall)
    run_streams(dut, [qs, ks], [out], seed=seed)
    mask = np.array([(out.values[0] >> j) & 1 for j in range(p.tokens)], dtype=bool)
    return mask, out.cycles[0] - qs.cycles[0] + 1


def golden_select(p, q, K):
    return g.topk_radix(g.lo_scores(q, K), p.keep, p.score_width)


@pytest.mark.parametrize("tokens, head_dim, keep", [(1, 1, 1), (8, 4, 3), (12, 8, 12),
                                                    (16, 6, 5)])
def test_random_and_extremes(tokens, head_dim, keep):
    p = g.LoTopKParams(tokens=tokens, head_dim=head_dim, keep=keep)
    rng = np.random.default_rng(tokens * 7 + keep)
    cases = {
        "random": (rng.integers(-128, 128, head_dim), rng.integers(-128, 128, (tokens, head_dim))),
        "all_equal": (np.full(head_dim, 3), np.full((tokens, head_dim), -5)),
        "one_dominant": (np.full(head_dim, 127),
                         np.where(np.arange(tokens)[:, None] == tokens // 2, 127,
                                  rng.integers(-2, 3, (tokens, head_dim)))),
        "extremes": (np.full(head_dim, -128), rng.choice([-128, 127, 0], (tokens, head_dim))),
    }
    for name, (q, K) in cases.items():
        mask, cycles = rtl_select(p, q, K)
        assert np.array_equal(mask, golden_select(p, q, K)), name
        assert mask.sum() == keep
        assert cycles == g.latency_cycles(p), name


def test_idle_and_backpressure():
    p = g.LoTopKParams(tokens=10, head_dim=5, keep=4)
    rng = np.random.default_rng(3)
    q, K = rng.integers(-128, 128, 5), rng.integers(-128, 128, (10, 5))
    mask, cycles = rtl_select(p, q, K, idle=0.4, stall=0.6, seed=2)
    assert np.array_equal(mask, golden_select(p, q, K))
    assert cycles >= g.latency_cycles(p)
