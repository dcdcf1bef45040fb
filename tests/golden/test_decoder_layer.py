"""The decoder-layer golden: a decode step with a KV cache equals the integer model's layer row
(``==``); sparse attention at ratio 1 is dense; the accelerator's shape checks and counts."""

import dataclasses

import numpy as np
import pytest
import torch

from hwsim.errors import HwsimError
from hwsim.golden.common import attention_head as ah
from hwsim.golden.common import jit
from hwsim.golden.vitallm import attn_layer as al
from hwsim.golden.vitallm import attn_out as ao
from hwsim.golden.vitallm import bitnet_layer as bl
from hwsim.golden.vitallm import decode_attention as gda
from hwsim.golden.vitallm import decode_step as gds
from hwsim.golden.vitallm import decoder_layer as dl
from hwsim.golden.vitallm import eps_divider as ed
from hwsim.golden.vitallm import ffn_in as fi
from hwsim.golden.vitallm import ffn_out as fo
from hwsim.golden.vitallm import layer_codes as lc
from hwsim.golden.vitallm import lo_topk as lt
from hwsim.golden.vitallm import norm_quant as nq
from hwsim.golden.vitallm import sparse_attention as sa
from hwsim.golden.vitallm import ternary_mvu as mvu
from models.bitnet.config import BitNetConfig
from models.bitnet.integer_model import build_integer_model, integer_forward
from models.bitnet.model import BitNetModel

MICRO = BitNetConfig("micro", hidden=32, ffn=64, layers=2, heads=4, kv_heads=2, vocab=256,
                     max_seq=32, source="tests")


@pytest.fixture(scope="module")
def micro_int():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = BitNetModel(MICRO, quantized=True).eval()
    rng = np.random.default_rng(0)
    calib = rng.integers(0, 256, (4, 16)).astype(np.int64)
    tokens = rng.integers(0, 256, 12).astype(np.int64)
    return build_integer_model(model, calib), tokens


def test_decode_steps_equal_integer_model_layers(micro_int):
    """Every layer, every position: a decode step on the cache of the earlier positions gives
    the integer model's residual row and the same int8 k, v codes."""
    im, tokens = micro_int
    cap = {}
    integer_forward(im, tokens, capture=cap)
    for li, L in enumerate(im.layers):
        c = cap[li]
        for t in range(tokens.size):
            x, k8, v8 = bl.decode_step(L, im, c["x_in"][t], c["k"][:t], c["v"][:t])
            assert np.array_equal(x, c["x_out"][t])
            assert np.array_equal(k8, c["k"][t]) and np.array_equal(v8, c["v"][t])


def test_sparse_ratio_one_is_dense(micro_int):
    im, tokens = micro_int
    dense = integer_forward(im, tokens)
    stats = {}
    assert np.array_equal(integer_forward(im, tokens, attend=bl.sparse_attend(1.0, stats)),
                          dense)
    assert stats["rows_kept"] == stats["rows_visible"]


def test_sparse_attend_keeps_ceil_ratio(micro_int):
    im, tokens = micro_int
    stats = {}
    cap = {}
    integer_forward(im, tokens, capture=cap, attend=bl.sparse_attend(0.25, stats))
    T, L = tokens.size, len(im.layers)
    vis = sum(range(1, T + 1)) * im.heads * L
    kept = sum(max(1, -(-t // 4)) for t in range(1, T + 1)) * im.heads * L
    assert stats == {"rows_visible": vis, "rows_kept": kept}
    # the last row of layer 0, head 0 equals sparse attention of that query over its tokens
    c, h = cap[0], 0
    M, S = im.layers[0].score_mult[h]
    r = sa.sparse_attention(c["q"][-1, h], c["k"][:, 0], c["v"][:, 0], 3, M, S, im.attn)
    assert np.array_equal(r["o"], c["o"][-1, h])


def test_decode_step_bad_input(micro_int):
    im, _ = micro_int
    L = im.layers[0]
    x = np.zeros(MICRO.hidden, dtype=np.int64)
    kv = np.zeros((im.attn.max_len, MICRO.kv_heads, MICRO.head_dim), dtype=np.int64)
    with pytest.raises(HwsimError, match="KV cache full"):
        bl.decode_step(L, im, x, kv, kv)
    with pytest.raises(HwsimError, match="one residual row"):
        bl.decode_step(L, im, x[None], kv[:1], kv[:1])
    with pytest.raises(HwsimError, match="keep ratio"):
        bl.sparse_attend(0.0)


def test_eps_constant_and_code_are_exact_integers():
    from fractions import Fraction

    E = lc.eps_constant(1e-5, 2.0 ** -40)
    assert type(E) is int and int(Fraction(1e-5) * 2 ** (2 * lc.RMS_FRAC + 80)) == E   # exact
    assert lc.eps_constant(1e-5, 2.0 ** -30) == 2951479051793529     # exact tie …528.5: up
    assert E.bit_length() > 64                   # wider than int64: kept a Python integer
    # E / (amax**power · 4**shift) rounded half up, exactly
    assert [lc.eps_code(10, s) for s in (0, 1, 2)] == [10, 3, 1]    # 10, 2.5 → 3, 0.625 → 1
    assert lc.eps_code(6, 1) == 2 and lc.eps_code(5, 1) == 1        # 1.5 → 2, 1.25 → 1
    big = 3 ** 200 + 12345
    for shift, amax, power in ((0, 1, 0), (3, 1, 0), (2, 77, 6), (5, 1 << 20, 6)):
        D = Fraction(amax) ** power * 4 ** shift
        want = min(int(Fraction(big) / D + Fraction(1, 2)), lc.EPS_CAP)
        assert lc.eps_code(big, shift, amax, power) == want
    # power 0 is a rounding right shift of E by 2·shift bits
    for shift in range(1, 40):
        assert lc.eps_code(E, shift) == min((E + (1 << (2 * shift - 1))) >> (2 * shift),
                                            lc.EPS_CAP)
    assert lc.eps_code(1 << 70, 0) == lc.EPS_CAP
    assert lc.eps_code(E, 2, 0, 6) == lc.EPS_CAP            # D = 0: an all-zero row
    with pytest.raises(HwsimError, match="amax must be a non-negative integer"):
        lc.eps_code(E, 0, -1, 6)
    with pytest.raises(HwsimError, match="input step"):
        lc.eps_constant(1e-5, 0.0)
    with pytest.raises(HwsimError, match="eps_power"):
        lc.NormCodes(np.zeros(4, dtype=np.int64), None, eps=1, eps_power=-2)
    norm = lc.NormCodes(np.zeros(4, dtype=np.int64), None, eps=E, eps_power=6)
    with pytest.raises(HwsimError, match="pass amax"):
        lc.norm_eps_codes(norm, np.zeros(2, dtype=np.int64))


def _norm_calls(im, tokens, rms_rows=None):
    """Logits of ``integer_forward`` and every ``rms_rows`` call it made, as ``(x, norm, amax)``;
    ``rms_rows`` (optional) replaces the golden one for the run."""
    calls = []
    real = lc.rms_rows
    rms = rms_rows or real

    def record(x, norm, amax=None):
        calls.append((np.asarray(x), norm, amax))
        return rms(x, norm, amax)

    lc.rms_rows = record
    try:
        with jit.disabled():             # the numpy definitions, where rms_rows is called
            logits = integer_forward(im, tokens)
    finally:
        lc.rms_rows = real
    return logits, calls


def _float_eps_codes(im, x, norm, amax):
    """Reference: the ε codes the integer model used before integer ε, ``round(ε / s² · 2**2G)``
    in float64 at each row's real step ``s`` (0 for a zero step)."""
    _, shifts = lc.shift_rows(x)
    layer = next((L for L in im.layers if any(norm is n for n in (L.attn_sub, L.ffn_sub))),
                 None)
    if layer is not None and norm is layer.ffn_sub:
        unit = amax.astype(np.float64) * lc.NORM_OUT.lsb / 127
        step = unit ** 3 * layer.proj["w1"].scale ** 2 * layer.proj["w3"].scale
    else:
        step = np.full(len(shifts), layer.wide_step if layer is not None else im.res.lsb)
    steps = step * np.exp2(shifts)
    return np.array([min(round(im.norm_eps / (st * st) * 2.0 ** (2 * lc.RMS_FRAC)), lc.EPS_CAP)
                     if st > 0 else 0 for st in steps], dtype=np.int64)


def _float_eps_rms_rows(im):
    """``rms_rows`` with the float ε codes of :func:`_float_eps_codes` (the model before)."""
    from hwsim.golden.vitallm import rmsnorm_int as rn
    def rms(x, norm, amax=None):
        xs, _ = lc.shift_rows(x)
        codes = _float_eps_codes(im, x, norm, amax)
        return np.concatenate([rn.rmsnorm_int(xs[t:t + 1], norm.gamma, int(codes[t]), norm.p)
                               for t in range(len(x))])

    return rms


def check_integer_eps_on_real_rows(im, tokens):
    """Every norm row of ``integer_forward``: the integer ε code is the float one up to the
    float64 rounding of the latter (relative 2**-48 ≫ the ~10 roundings of ≤ 2**-53 in its
    step, plus 1 for its final rounding), exactly equal where the float code is below 2**48;
    an all-zero FFN row (amax 0) gets EPS_CAP where the float code was 0. The logits equal
    those of the model with float ε codes. Returns (rows, rows with a different code)."""
    logits, calls = _norm_calls(im, tokens)
    rows = differ = 0
    powers = set()
    for x, norm, amax in calls:
        new = lc.norm_eps_codes(norm, lc.shift_rows(x)[1], amax)
        old = _float_eps_codes(im, x, norm, amax)
        zero = old == 0
        assert np.all(new[zero] == lc.EPS_CAP) and not np.any(x[zero])
        tol = 1 + (old.astype(np.float64) * 2.0 ** -48).astype(np.int64)
        assert np.all(np.abs(new - old)[~zero] <= tol[~zero])
        assert np.array_equal(new[old < 1 << 48], old[old < 1 << 48])
        rows += len(x)
        differ += int(np.sum(new != old))
        powers.add(norm.eps_power)
    assert powers == {0, lc.FFN_SUB_EPS_POWER}
    assert rows == tokens.size * (4 * len(im.layers) + 1)
    before, _ = _norm_calls(im, tokens, _float_eps_rms_rows(im))
    assert np.array_equal(logits, before)
    return rows, differ


def test_integer_eps_matches_float_eps_on_real_rows(micro_int):
    im, tokens = micro_int
    for L in im.layers:
        assert [n.eps_power for n in (L.attn_norm, L.attn_sub, L.ffn_norm, L.ffn_sub)] == \
            [0, 0, 0, 6]
        assert all(type(n.eps) is int for n in (L.attn_norm, L.attn_sub, L.ffn_norm, L.ffn_sub))
    check_integer_eps_on_real_rows(im, tokens)


def test_params_reject_bad_shapes():
    with pytest.raises(HwsimError, match="cannot exceed"):
        dl.DecoderLayerParams(tokens=64, keep=65)
    with pytest.raises(HwsimError, match="at least 1"):
        dl.DecoderLayerParams(keep=0)
    with pytest.raises(HwsimError, match="weight memory"):
        dl.DecoderLayerParams(heads=16, ffn=1408, weight_kib=64)
    with pytest.raises(HwsimError, match="KV memory"):
        dl.DecoderLayerParams(max_len=1024, tokens=128, keep=16, kv_kib=48)
    with pytest.raises(HwsimError, match="exceed the KV cache"):
        dl.DecoderLayerParams(max_len=64, tokens=128)


def test_counts_compose_the_kernel_formulas():
    p = dl.DecoderLayerParams(tokens=128, keep=16)
    kv = p.kv_read_bytes()
    rep = p.heads // p.kv_heads
    assert kv["dense"] == p.kv_heads * 2 * 128 * p.head_dim
    assert kv["sparse"] == p.kv_heads * 2 * rep * 16 * p.head_dim
    assert kv["per_head_reduction"] == 1 - 16 / 128
    # no GQA: the paper's 1 − K/M; a GQA group cannot read more than every row
    mha = dl.kv_read_bytes(32, 32, 100, 128, 16)
    assert 1 - mha["sparse"] / mha["dense"] == 1 - 16 / 128
    assert dl.kv_read_bytes(4, 1, 32, 128, 64)["sparse"] == dl.kv_read_bytes(4, 1, 32, 128,
                                                                             128)["dense"]
    att = dl.attention_cycles(p)
    da = p.decode_attention()
    assert (da.tokens, da.keep, da.heads, da.kv_heads) == (128, 16, p.heads, p.kv_heads)
    assert att["pipelined"] == gda.decode_attention_cycles(da)
    # QKᵀ and A·V run on VitaLLM's Booth core; the multiplier style changes no cycle
    assert da.multiplier == da.attention().multiplier == "booth"
    dsp = dataclasses.replace(da, multiplier="dsp")
    assert gda.decode_attention_cycles(dsp) == att["pipelined"]
    assert ah.query_cycles(dsp.attention(), 16) == ah.query_cycles(da.attention(), 16)
    assert att["select"] == lt.latency_cycles(lt.LoTopKParams(tokens=128, head_dim=p.head_dim,
                                                              keep=16))
    assert att["exact"] == 1 + 16 * da.attention().chunks + ah.query_cycles(da.attention(), 16)
    # one head apart: more than the slower stage alone, less than both stages in sequence
    slow = max(att["select"], att["exact"])
    assert p.heads * slow < att["pipelined"] < p.heads * (att["select"] + att["exact"])
    c = dl.decode_cycles(p)
    assert c["total"] == sum(v for k, v in c.items() if k != "total")
    # the attention block is the decode-step RTL's formula
    assert c["qkv_frontend"] + c["kv_append"] + c["attention"] == \
        gds.decode_step_cycles(p.decode_step())
    # the attention output path is the attn-out RTL's formula (its heads' amax: the engine's)
    aop = p.attn_out()
    assert aop.amax_width == da.attention().av_acc_width and aop.hidden == p.hidden
    assert ao.latency_cycles(aop) == nq.latency_cycles(p.norm_quant(p.hidden)) \
        + mvu.latency_cycles(p.mvu("wo"))
    # the attention half is the attn-layer RTL's formula: attn-out's first C o beats are the
    # decode step's output beats, so after them only its tail is left
    alp = p.attn_layer()
    assert alp.attn_out() == aop
    assert c["attn_out"] == ao.latency_cycles(aop) - p.hidden // p.lanes
    assert sum(c[k] for k in ("attn_norm", "qkv_frontend", "kv_append", "attention",
                              "attn_out")) == al.latency_cycles(alp)
    # the fixed-step norms are the norm-quant unit; the FFN SubLN (ε power 6) and w2 are the
    # ffn-out RTL's phases after its last prod beat (its wide ε divider on the critical path)
    nqp = p.norm_quant(p.hidden)
    assert (nqp.n, nqp.lanes) == (p.hidden, p.lanes)
    assert c["attn_norm"] == nq.latency_cycles(nqp) == 186
    fop = p.ffn_out()
    assert (fop.hidden, fop.ffn, fop.lanes, fop.prod_width) == (p.hidden, p.ffn, p.lanes, 44)
    assert {k: c[k] for k in ("ffn_subln", "w2")} == fo.phase_cycles(fop)
    assert c["w2"] == mvu.latency_cycles(p.mvu("w2"))
    assert c["ffn_subln"] + p.ffn + c["w2"] == fo.latency_cycles(fop)
    assert c["ffn_subln"] == ed.latency_cycles(fop.divider()) + 1 - 2 * fop.chunks \
        + nq.latency_cycles(fop.norm_quant()) == 255
    # the FFN norm and w1, w3 are the ffn-in RTL's formula (w1 and w3 in parallel), its C row
    # beats overlapping attn-layer's output codes in the decoder-layer controller
    fip = fi.phase_cycles(p.ffn_in())
    assert (c["ffn_norm"], c["w1_w3"]) == (fip["ffn_norm"] - p.hidden // p.lanes, fip["w1_w3"])
    assert c["ffn_norm"] == nq.latency_cycles(nqp) - p.hidden // p.lanes == 178
    assert c["total"] == dl.latency_cycles(p)
    dense = dl.decode_cycles(dataclasses.replace(p, keep=128))
    assert c["attention"] < dense["attention"]
    assert {k: v for k, v in c.items() if k not in ("attention", "total")} == \
        {k: v for k, v in dense.items() if k not in ("attention", "total")}


@pytest.mark.slow
def test_trained_bitnet_tiny_decode_steps(bitnet_tiny):
    """The briefly trained BitNet-tiny (:func:`tests.conftest.bitnet_tiny`):
    decode steps of the last 8 of 64 real tokens equal the integer model, both layers, dense
    and sparse (K/M = 1/4); its integer ε codes match the float ones on those rows
    (:func:`check_integer_eps_on_real_rows`)."""
    from models.bitnet.checkpoint import load_checkpoint
    from models.bitnet.data import stdlib_corpus

    torch.set_num_threads(1)
    model, _ = load_checkpoint(bitnet_tiny / "ternary")
    corpus = stdlib_corpus()
    im = build_integer_model(model, np.stack([corpus.train[i * 977:i * 977 + 128]
                                              for i in range(4)]).astype(np.int64))
    tokens = corpus.val[2000:2064].astype(np.int64)
    check_integer_eps_on_real_rows(im, tokens)
    for ratio in (1.0, 0.25):
        attend = bl.sparse_attend(ratio)
        cap = {}
        integer_forward(im, tokens, capture=cap, attend=attend)
        for li, L in enumerate(im.layers):
            c = cap[li]
            for t in range(56, 64):
                x, k8, v8 = bl.decode_step(L, im, c["x_in"][t], c["k"][:t], c["v"][:t],
                                           attend=attend)
                assert np.array_equal(x, c["x_out"][t])
                assert np.array_equal(k8, c["k"][t]) and np.array_equal(v8, c["v"][t])
