"""The run-time sequence length L of a decode step (1 … M): the goldens attend to the first L
cache slots keeping min(K, L), L ≤ K is dense attention code for code, and the cycle formulas
of L give today's numbers at L = M."""

import itertools

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common import attention_head as ah
from hwsim.golden.vitallm import attn_layer as al
from hwsim.golden.vitallm import decode_attention as da
from hwsim.golden.vitallm import decode_step as ds
from hwsim.golden.vitallm import decoder_layer as dl
from hwsim.golden.vitallm import lo_topk as lt
from hwsim.golden.vitallm import sparse_attention as sa

P = da.DecodeAttentionParams(heads=2, kv_heads=1, head_dim=8, tokens=8, keep=3, lanes=4,
                             exp_lanes=2)
MULTS = [(180, 12), (150, 11)]


@pytest.fixture
def qkv():
    rng = np.random.default_rng(4)
    return rng.integers(-128, 128, (2, 8)), *rng.integers(-128, 128, (2, 1, 8, 8))


@pytest.mark.parametrize("L", [1, 2, 3, 5, 8])
def test_attends_to_the_first_l_slots_keeping_min_k_l(qkv, L):
    q, K, V = qkv
    o, amax = da.decode_attention(q, K, V, MULTS, P, L)
    for h in range(2):
        r = sa.sparse_attention(q[h], K[0, :L], V[0, :L], min(3, L), *MULTS[h], P.attention())
        assert np.array_equal(o[h], r["o"]) and amax[h] == r["amax"]
    later = K.copy()
    later[:, L:] = -K[:, L:] - 1     # slots past L − 1 are never read
    assert np.array_equal(da.decode_attention(q, later, V, MULTS, P, L)[0], o)
    if P.keep >= L:                  # fewer visible tokens than kept: dense attention
        dense = [ah.attention_head(q[h], K[0, :L], V[0, :L], *MULTS[h], P.attention())[0][0]
                 for h in range(2)]
        assert np.array_equal(o, np.stack(dense))


def test_default_length_is_m_and_shorter_steps_cost_less(qkv):
    q, K, V = qkv
    assert np.array_equal(da.decode_attention(q, K, V, MULTS, P)[0],
                          da.decode_attention(q, K, V, MULTS, P, 8)[0])
    cyc = [da.decode_attention_cycles(P, L) for L in range(1, 9)]
    assert cyc[-1] == da.decode_attention_cycles(P)
    assert all(a < b for a, b in itertools.pairwise(cyc))
    sel = P.selector()
    assert lt.latency_cycles(sel, 5) == lt.latency_cycles(sel) - 3 == 1 + 5 + sel.score_width + 2
    lp = dl.DecoderLayerParams()
    assert dl.latency_cycles(lp, lp.tokens) == dl.latency_cycles(lp) == 9578
    assert dl.decode_cycles(lp, 1)["total"] == dl.latency_cycles(lp, 1) \
        == al.latency_cycles(lp.attn_layer(), 1) + dl.latency_cycles(lp) \
        - al.latency_cycles(lp.attn_layer())
    assert ds.decode_step_phases(lp.decode_step(), 17)["attention"] == \
        da.decode_attention_cycles(lp.decode_attention(), 17)


@pytest.mark.parametrize("bad", [0, 9, -1, True, 2.0, "3"])
def test_bad_length_is_one_line(qkv, bad):
    q, K, V = qkv
    with pytest.raises(HwsimError, match=r"decode-attention length must be an integer 1 … 8"):
        da.decode_attention(q, K, V, MULTS, P, bad)
    with pytest.raises(HwsimError, match="length must be an integer"):
        da.decode_attention_cycles(P, bad)


def test_decode_step_needs_the_earlier_tokens():
    p = ds.DecodeStepParams(hidden=16, heads=2, kv_heads=1, head_dim=4, tokens=6, keep=2,
                            lanes=4)
    a = {"K": np.zeros((1, 2, 4), np.int64), "V": np.zeros((1, 2, 4), np.int64),
         "wq": np.zeros((8, 16), np.int64), "wk": np.zeros((4, 16), np.int64),
         "wv": np.zeros((4, 16), np.int64), "a": np.zeros(16, np.int64), "amax": 1,
         "cos": np.zeros(4, np.int64), "sin": np.zeros(4, np.int64),
         "mults": np.ones((4, 2), np.int64), "score_mults": np.ones((2, 2), np.int64)}
    assert ds.decode_step_attention(a, p, 3)[0].shape == (2, 4)
    with pytest.raises(HwsimError, match="length 4 needs an earlier cache of 3 tokens"):
        ds.decode_step_attention(a, p, 4)
