"""Golden rotary embedding on int8 codes: a hand-computed example, the float64 reference
within the stated bound, the table/scale helpers and the parameter checks."""

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common import rope as g


def test_hand_computed_example():
    # frac 2 (codes in quarters), y = a / 4 rounded half even: token 0 at 0°, token 1 at 90°,
    # token 2 with C = 3, S = 1
    p = g.RopeParams(head_dim=2, heads=1, tokens=3, frac=2, mult=1, shift=2,
                     cos=((4,), (0,), (3,)), sin=((0,), (4,), (1,)))
    x = np.array([[10, -3], [5, 7], [6, 0]])
    # t0: a = (40, -12); t1: a = (-28, 20); t2: a = (18, 6) → 4.5, 1.5 → 4, 2 (half even)
    assert g.rope(x, p).tolist() == [[10, -3], [-7, 5], [4, 2]]
    assert g.rope_acc(x, p).tolist() == [[40, -12], [-28, 20], [18, 6]]
    # saturation: 45° with |a| = 2 · 127 · 4 → 254 → 127; two heads, pairs (i, i + 2)
    q = g.RopeParams(head_dim=4, heads=2, tokens=1, frac=2, mult=1, shift=2,
                     cos=((4, 4),), sin=((4, 0),))
    x = np.array([[127, 1, 127, 2, -128, 0, 127, 0]])
    # head 0: pair 0 (127, 127) → (0, 254→127); pair 1 (1, 2) with C=4, S=0 → (1, 2)
    # head 1: pair 0 (-128, 127) → (-255 → -128, -1); pair 1 (0, 0)
    assert g.rope(x, q).tolist() == [[0, 1, 127, 2, -128, 0, -1, 0]]


@pytest.mark.parametrize("frac, real", [(14, 1.0), (12, 0.37), (10, 2.3), (16, 0.011)])
def test_matches_float64_rotation_within_the_bound(frac, real):
    rng = np.random.default_rng(frac)
    T, H, hd = 6, 3, 8
    h = hd // 2
    ang = rng.uniform(-np.pi, np.pi, (T, h))
    cos_t, sin_t = g.rope_tables(np.cos(ang), np.sin(ang), frac)
    mult, shift = g.rope_scale(real, frac)
    p = g.RopeParams(head_dim=hd, heads=H, tokens=T, frac=frac, mult=mult, shift=shift,
                     cos=cos_t, sin=sin_t)
    x = rng.integers(-128, 128, (2, T, H, hd))
    y = g.rope(x, p)
    lo, hi = x[..., :h].astype(np.float64), x[..., h:].astype(np.float64)
    c, s = np.cos(ang)[None, :, None, :], np.sin(ang)[None, :, None, :]
    ref = np.concatenate([lo * c - hi * s, hi * c + lo * s], axis=-1) * real
    # bound: half an output step of rounding + the table codes' rounding (½ · 2**-frac per
    # product, times the factor) + the multiplier's error on |a| ≤ |x_i| + |x_{i+h}|
    r_q = mult * 2.0 ** (frac - shift)
    span = np.concatenate([np.abs(lo) + np.abs(hi)] * 2, axis=-1)
    bound = 0.5 + real * span * 2.0 ** -(frac + 1) + span * abs(r_q - real) + 1e-9
    err = np.abs(y - np.clip(ref, -128, 127))
    assert np.all(err <= bound), float(np.max(err - bound))
    assert abs(r_q / real - 1) < 2.0 ** -15


def test_shapes_tables_and_defaults():
    p = g.RopeParams(head_dim=4, heads=2, tokens=3)
    x = np.random.default_rng(0).integers(-128, 128, (2, 3, 2, 4))
    flat = g.rope(x.reshape(2, 3, 8), p)
    assert flat.shape == (2, 3, 8) and np.array_equal(flat.reshape(x.shape), g.rope(x, p))
    c, s = g.standard_angles(3, 4)
    assert (p.cos, p.sin) == g.rope_tables(c, s, 14)  # the default: base-10000 tables
    assert p.cos[0] == (1 << 14, 1 << 14) and p.sin[0] == (0, 0)
    # lists (a plan's JSON) become the same hashable params
    assert g.RopeParams(head_dim=4, heads=2, tokens=3, cos=[list(r) for r in p.cos],
                        sin=np.array(p.sin)) == p
    assert g.latency_cycles(p) == 2 + 2 and g.stream_cycles(p, 3) == 3 * 8 + 4
    assert g.action_counts(p, 1)["requant_mul"] == 8 and g.interval_cycles(p) == 8


@pytest.mark.parametrize("kw, match", [
    (dict(head_dim=5), "head_dim must be even"),
    (dict(head_dim=0), "head_dim must be"),
    (dict(heads=0), "heads must be a positive"),
    (dict(mult=1 << 16), "mult must be an integer 1"),
    (dict(mult=0), "mult must be an integer 1"),
    (dict(shift=0), "shift must be an integer 1"),
    (dict(shift=49), "shift must be an integer 1"),
    (dict(frac=17), "frac must be an integer 1"),
    (dict(tokens=2, cos=((1, 2),), sin=((0, 0),)), r"cos table has shape \(1, 2\)"),
    (dict(tokens=1, cos=((1, 2),), sin=((0, 0, 0),)), r"sin table has shape"),
    (dict(tokens=1, frac=2, cos=((5, 0),), sin=((0, 0),)), "exceeds 2\\*\\*frac"),
    (dict(tokens=1, cos=((1.5, 0),), sin=((0, 0),)), "must be integers"),
    (dict(tokens=1, cos=((1, 0),)), "both cos and sin"),
])
def test_bad_params_raise_one_line(kw, match):
    base = dict(head_dim=4, heads=1, tokens=1)
    with pytest.raises(HwsimError, match=match) as e:
        g.RopeParams(**{**base, **kw})
    assert "\n" not in str(e.value)


def test_bad_inputs_and_scales():
    p = g.RopeParams(head_dim=4, heads=2, tokens=3)
    with pytest.raises(HwsimError, match="rope input has shape"):
        g.rope(np.zeros((3, 7), np.int64), p)
    with pytest.raises(HwsimError):
        g.rope(np.full((3, 8), 200), p)
    with pytest.raises(HwsimError, match="positive finite"):
        g.rope_scale(-1.0)
    with pytest.raises(HwsimError, match=r"\[-1, 1\]"):
        g.rope_tables(np.full((2, 2), 1.5), np.zeros((2, 2)))
