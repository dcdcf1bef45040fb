"""Predictive sparse attention: K = M is dense attention exactly; K < M attends to the kept set."""

import numpy as np
import pytest

from hwsim.golden.common import attention_head as ah
from hwsim.golden.common.int8_matmul import fold_scale
from hwsim.golden.vitallm import sparse_attention as sa


@pytest.fixture
def qkv():
    rng = np.random.default_rng(0)
    d, M = 16, 24
    return rng.integers(-128, 128, d), rng.integers(-128, 128, (M, d)), \
        rng.integers(-128, 128, (M, d))


def _scale(d):
    # s_q = s_k = 1/16, scores as int8 with 4 fractional bits: M·2**-S = s_q·s_k/√d · 2**4
    return fold_scale(1 / 16, 1 / 16, 1 / np.sqrt(d), 2.0 ** 4)


def test_keep_all_equals_dense(qkv):
    q, K, V = qkv
    p = ah.AttentionParams(head_dim=16, max_len=32, lanes=4)
    m, s = _scale(16)
    dense_o, dense_amax = ah.attention_head(q, K, V, m, s, p)
    out = sa.sparse_attention(q, K, V, K.shape[0], m, s, p)
    assert out["mask"].all()
    assert np.array_equal(out["o"], dense_o[0]) and out["amax"] == dense_amax[0]


def test_sparse_attends_to_the_kept_tokens(qkv):
    q, K, V = qkv
    p = ah.AttentionParams(head_dim=16, max_len=32, lanes=4)
    m, s = _scale(16)
    K = K.copy()
    K[5] = np.where(q >= 0, 127, -128)  # an obviously dominant key
    out = sa.sparse_attention(q, K, V, 4, m, s, p)
    assert out["mask"].sum() == 4 and out["mask"][5]
    o, amax = ah.attention_head(q, K[out["mask"]], V[out["mask"]], m, s, p)
    assert np.array_equal(out["o"], o[0]) and out["amax"] == amax[0]


def test_cost_formulas_compose():
    p = ah.AttentionParams(head_dim=64, max_len=128, lanes=16)
    dense = ah.query_cycles(p, 128)
    sparse = sa.decode_cycles(p, 128, 16)
    assert sparse < dense
    c = sa.action_counts(p, 128, 16)
    assert c["kv_read_bytes_sparse"] == 2 * 16 * 64
