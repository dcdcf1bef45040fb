"""The compiled row loops (:mod:`hwsim.golden.common.jit`) equal the numpy definitions code for
code: each scalar operation against Python integers at the int64 extremes, the norm unit, the
attention heads and the whole integer model with the loops on and off, and a row the loops do
not cover goes to the numpy definition (its exact result, or its error)."""


import contextlib

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common import attention_head as ah
from hwsim.golden.common import exact, jit
from hwsim.golden.common import softmax_int as sm
from hwsim.golden.vitallm import layer_codes as lc
from hwsim.golden.vitallm import norm_quant as nq
from hwsim.golden.vitallm import rmsnorm_int as rn
from quant.qtype import INT8, Overflow, QType, Rounding, _fit_int, _round_shift_int

K = jit.kernels()
RNG = np.random.default_rng(11)
I64 = (-(1 << 63), (1 << 63) - 1)
EDGE = [I64[0], I64[0] + 1, -(1 << 62) - 1, -(1 << 53), -3, -2, -1, 0, 1, 2, 3, (1 << 53) + 1,
        1 << 62, I64[1] - 1, I64[1]]


def _values(n=200):
    v = [int(x) for x in RNG.integers(I64[0], I64[1], n, dtype=np.int64, endpoint=True)]
    v += [int(x) for x in RNG.integers(-(1 << 20), 1 << 20, n)]
    return EDGE + v


@pytest.mark.parametrize("mode", list(Rounding))
def test_round_shift_is_the_integer_definition(mode):
    code = jit.ROUNDING[mode]
    for s in [0, 1, 2, 3, 17, 31, 52, 53, 61, 62]:
        for v in _values(60):
            # ties: the rounding bit set and nothing below it
            for x in (v, (v >> s << s) | ((1 << s) >> 1) if s else v):
                x = (x + (1 << 63)) % (1 << 64) - (1 << 63)
                assert K.round_shift(x, s, code) == _round_shift_int(x, s, mode), (x, s, mode)


@pytest.mark.parametrize("q", [QType(8), QType(8, narrow=True), QType(8, signed=False),
                               QType(24, frac=16), QType(12, overflow=Overflow.WRAP),
                               QType(12, overflow=Overflow.WRAP, narrow=True),
                               QType(9, signed=False, overflow=Overflow.WRAP),
                               QType(64, overflow=Overflow.WRAP), QType(63, overflow=Overflow.WRAP)])
def test_fit_is_qtype_fit(q):
    vals = _values(100)
    got = [K.fit(v, *jit.fit_args(q)) for v in vals]
    assert got == [int(c) for c in q.fit(np.array(vals, dtype=np.int64))]
    if q.width < 64:
        assert got == [_fit_int(v, q) for v in vals]


def test_bit_length_isqrt_reciprocal_are_exact():
    vals = [v for v in _values(300) if v >= 0]
    vals += [r * r + d for r in (1, 2, 3, 1 << 20, 3037000499, (1 << 31) - 1) for d in (-1, 0, 1)]
    for v in vals:
        assert K.bit_length(v) == v.bit_length()
        r = K.isqrt(v)
        assert r * r <= v < (r + 1) * (r + 1), v
        for bits in (1, 16, 19):
            r, k = K.reciprocal(v, bits)
            want_k = max(v.bit_length() - 1, 0) + bits
            assert k == want_k
            assert r == (-1 if want_k > 62 else ((1 << want_k) // v if v else 0))
            if want_k <= 62:
                er, ek = exact.reciprocal(np.array([v]), bits)
                assert (int(er[0]), int(ek[0])) == (r, k)


def _norm(n=64, eps=12345, power=0, gamma_frac=16):
    return lc.NormCodes(gamma=RNG.integers(-(1 << 17), 1 << 18, n),
                        p=lc.norm_params(n, 8, gamma_frac), eps=eps, eps_power=power)


def _both(fn, *args):
    got = fn(*args)
    with jit.disabled():
        want = fn(*args)
    return got, want


def _rows(n=64):
    x = RNG.integers(-(1 << 40), 1 << 40, (40, n)) >> RNG.integers(0, 40, (40, 1))
    x[0] = 0                                            # all-zero row
    x[1] = RNG.integers(-3, 4, n)                       # tiny row
    x[2] = np.full(n, I64[1])                           # the widest rows
    x[3] = np.where(RNG.random(n) < .5, I64[0] + 1, I64[1])
    x[4, 5] = -(1 << 21)                                # a peak exactly at NORM_IN_BITS
    return x


@pytest.mark.parametrize(("eps", "power"), [(0, 0), (12345, 0), ((1 << 61) - 1, 0),
                                            (1 << 61, 0), (1 << 100, 0), (7 << 150, 6),
                                            (12345, 2)])
def test_norm_unit_equals_its_numpy_definition(eps, power):
    norm = _norm(eps=eps, power=power)
    x = _rows()
    amax = RNG.integers(0, 1 << 20, len(x)) if power else None
    if power:
        amax[:3] = [0, 1, (1 << 23) - 1]
    (a, am), (ra, ram) = _both(nq.norm_act_rows, x, norm, amax)
    assert a.dtype == ra.dtype == np.int64
    assert np.array_equal(a, ra) and np.array_equal(am, ram)
    assert np.array_equal((ra, ram)[0], lc.act_quant(lc.rms_rows(x, norm, amax))[0])


def test_norm_unit_rows_the_loops_do_not_cover_take_the_numpy_path():
    norm = _norm()
    x = _rows()
    x[7, 3] = I64[0]                                    # −2**63: no int64 magnitude
    (a, am), (ra, ram) = _both(nq.norm_act_rows, x, norm)
    assert np.array_equal(a, ra) and np.array_equal(am, ram)
    # a row whose output shift passes 62 (a wide RMS, many gain fraction bits): the loops hand
    # it to the numpy definition, which computes it in Python integers
    odd = lc.NormCodes(gamma=np.full(8, 1 << 30), eps=0,
                       p=rn.RmsNormParams(n=8, lanes=8, x=lc.WIDE, gamma=QType(32, frac=31),
                                          out=QType(8, frac=6), rms_frac=0, recip_bits=30))
    xs = RNG.integers(1 << 20, 1 << 21, (5, 8))
    (a, am), (ra, ram) = _both(nq.norm_act_rows, xs, odd)
    assert np.array_equal(a, ra) and np.array_equal(am, ram) and am.min() > 0
    # a shape the unit does not take: the numpy definition's error
    with pytest.raises(HwsimError):
        nq.norm_act_rows(x[:, :10], norm)


@pytest.mark.parametrize(("T", "L", "H", "KV", "causal", "B"), [
    (7, 7, 4, 2, True, 1), (3, 11, 2, 2, True, 2), (1, 30, 4, 1, True, 3),
    (9, 9, 2, 1, False, 2), (128, 128, 2, 2, True, 1)])   # the last in causal blocks
def test_attention_heads_equal_their_numpy_definition(T, L, H, KV, causal, B):
    p = ah.AttentionParams(head_dim=16, lanes=8, max_len=128)
    q = RNG.integers(-128, 128, (B, T, H, 16))
    Kc = RNG.integers(-128, 128, (B, L, KV, 16))
    V = RNG.integers(-128, 128, (B, L, KV, 16))
    q[0, 0] = -128                                      # extreme rows: every score saturates
    Kc[0, :2] = -128
    V[0, :3] = 127
    mults = [(int(RNG.integers(1, 1 << 16)), int(RNG.integers(8, 20))) for _ in range(H)]
    (o, am), (ro, ram) = _both(ah.attention_heads, q, Kc, V, mults, p, causal)
    assert np.array_equal(o, ro) and np.array_equal(am, ram)
    o1, a1 = ah.attention_head(q[0, :, 0], Kc[0, :, 0], V[0, :, 0], *mults[0], p, causal)
    assert np.array_equal(o[0, :, 0], o1) and np.array_equal(am[0, :, 0], a1)


@pytest.mark.parametrize("p", [
    lc.norm_params(32, 8, 16), rn.RmsNormParams(n=32, lanes=8, x=QType(16)),
    rn.RmsNormParams(n=32, lanes=8, x=QType(16), out=QType(10, frac=4, rounding=Rounding.TRUNC)),
    rn.RmsNormParams(n=32, lanes=8, x=QType(16), out=QType(12, frac=6, overflow=Overflow.WRAP))])
def test_rmsnorm_rows_equal_their_numpy_definition(p):
    x = RNG.integers(-(1 << 15), 1 << 15, (30, 32)) >> RNG.integers(0, 15, (30, 1))
    x[0] = 0
    x[1] = -(1 << 15)
    g = RNG.integers(p.gamma.min_code, p.gamma.max_code + 1, 32)
    for eps in (0, 77, (1 << p.eps_width) - 1, RNG.integers(0, 1 << 20, 30)):
        got, want = _both(rn.rmsnorm_int, x, g, eps, p)
        assert np.array_equal(got, want)
    got, want = _both(rn.rmsnorm_int, x[3], g, 5, p)        # one row (n,)
    assert got.shape == (32,) and np.array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_absmax_heads_equal_absmax_requant(dtype):
    acc = RNG.integers(-(1 << 23), 1 << 23, (2, 5, 7, 32)).astype(dtype)   # (B, H, T, d)
    acc[0, 0, 0] = 0
    acc[0, 1, 0, 0] = -(1 << 23)
    for out in (INT8, QType(8, narrow=True), QType(6, overflow=Overflow.WRAP)):
        codes = np.full((2, 10, 5, 32), 99, dtype=np.int64)                # rows 3 … 9 written
        amax = np.full((2, 10, 5), -7, dtype=np.int64)
        bad = jit.specialized("absmax_heads", out)(acc, codes, amax, 3, 16, out.max_code)
        rc, ra = ah.absmax_requant(acc, out, 16)
        assert bad == -1
        assert np.array_equal(codes[:, 3:], rc.transpose(0, 2, 1, 3)) and (codes[:, :3] == 99).all()
        assert np.array_equal(amax[:, 3:], ra.transpose(0, 2, 1)) and (amax[:, :3] == -7).all()


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64])
def test_heads_float32_lays_out_and_checks(dtype):
    x = RNG.integers(-128, 128, (2, 9, 3, 16)).astype(dtype)
    x[0, 0, 0, 0], x[1, 8, 2, 15] = -128, 127
    for keys, order in ((False, (0, 2, 1, 3)), (True, (0, 2, 3, 1))):
        out, ok = jit.kernels().heads_float32(x, -128, 127, keys)
        assert ok and out.dtype == np.float32 and out.flags.c_contiguous
        assert np.array_equal(out, x.transpose(order))
        for bad in (-129, 128):
            if np.iinfo(dtype).min <= bad <= np.iinfo(dtype).max:
                y = x.copy()
                y[1, 4, 1, 7] = bad
                assert not jit.kernels().heads_float32(y, -128, 127, keys)[1]


@pytest.mark.parametrize("act", ["relu2", "silu"])
def test_integer_model_equals_its_numpy_definition(act):
    import torch

    from models.bitnet.config import BitNetConfig
    from models.bitnet.integer_model import build_integer_model, integer_forward
    from models.bitnet.model import BitNetModel

    cfg = BitNetConfig("micro", hidden=32, ffn=64, layers=2, heads=4, kv_heads=2, vocab=256,
                       max_seq=48, source="tests", act=act)
    torch.manual_seed(1)
    im = build_integer_model(BitNetModel(cfg, quantized=True).eval(),
                             RNG.integers(0, 256, (4, 16)))
    tokens = RNG.integers(0, 256, (3, 40))              # a batch, long enough for causal blocks
    got, want = _both(integer_forward, im, tokens)
    assert np.array_equal(got, want)


def test_hwsim_no_jit_turns_the_loops_off(monkeypatch):
    assert jit.enabled()
    monkeypatch.setenv("HWSIM_NO_JIT", "1")
    assert not jit.enabled()
    monkeypatch.setenv("HWSIM_NO_JIT", "0")
    assert jit.enabled()
    with jit.disabled():
        assert not jit.enabled()
    assert jit.enabled()


@pytest.mark.parametrize("n", [128, 1536, 4096])
def test_loops_cover_the_model_rows(n):
    """Rows of the layer's norms (at most NORM_IN_BITS bits after the shift) stay in the
    compiled loop, up to the FFN width of the 700M model: none is handed back to numpy (rows
    at the peak in every element up to 1536 wide; at 4096, Σx² · 2**(2G) of such a row passes
    2**63, so the rows there are uniform codes with one element at the peak)."""
    p = lc.norm_params(n, 16, 16)
    g = np.full(n, (1 << 18) - 1)
    top = 1 << lc.NORM_IN_BITS
    if n <= 1536:
        x = np.full((4, n), top - 1)
        x[1] = -top
    else:
        x = RNG.integers(-top, top, (4, n))
        x[:, 0] = -top
    codes, bad = jit.specialized("rmsnorm_rows", p.out)(
        x, np.full(4, (1 << 61) - 1), g, 2 * p.rms_frac, p.recip_bits, p.shift_base,
        *rn.int64_limits(p))
    assert bad == -1
    with jit.disabled():
        assert np.array_equal(codes, rn.rmsnorm_int(x, g, np.full(4, (1 << 61) - 1), p))


@pytest.mark.parametrize("which", [0, 1, 2])
def test_attention_operands_outside_int8_are_refused_on_every_path(which):
    """The float path checks int8 ranges in its layout pass; the message is QType.check's."""
    p = ah.AttentionParams(head_dim=16, lanes=8, max_len=64)
    ops = [RNG.integers(-128, 128, (8, 2, 16)) for _ in range(3)]
    ops[which][3, 1, 5] = 128 if which != 1 else -129
    name = ("attention q", "attention K", "attention V")[which]
    for ctx in (contextlib.nullcontext(), exact.force_int64(), jit.disabled()):
        with ctx, pytest.raises(HwsimError, match=f"{name} hold"):
            ah.attention_heads(*ops, [(1 << 15, 20)] * 2, p, causal=True)


def test_without_numba_the_numpy_definitions_run():
    """Where numba cannot load, one warning and the numpy definitions: same codes."""
    import subprocess
    import sys

    code = (
        "import sys, warnings\n"
        "sys.modules['numba'] = None\n"
        "import numpy as np\n"
        "from hwsim.golden.common import jit\n"
        "from hwsim.golden.common import softmax_int as sm\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    print(jit.enabled(), len(w), 'unavailable' in str(w[0].message))\n"
        "x = np.arange(-64, 64).reshape(4, 32)\n"
        "print(sm.softmax_int(x).sum())\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0] == "False 1 True"
    with jit.disabled():
        want = sm.softmax_int(np.arange(-64, 64).reshape(4, 32)).sum()
    assert int(lines[1]) == want
