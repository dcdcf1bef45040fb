"""Golden integer LIF array (hwsim/golden/snn/lif_array.py)."""

import dataclasses

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common.lanes import unpack_lanes
from hwsim.golden.snn import lif_array as spec


def test_mul_leak_is_beta_within_half_an_lsb():
    p = spec.LifParams()
    v = np.arange(-32768, 32768, 7)
    assert p.beta == 236 / 256
    assert np.max(np.abs(spec.leak(v, p) - v * p.beta)) <= 0.5


def test_shift_leak_is_a_shift_and_subtract():
    p = spec.LifParams(leak_mode="shift", leak_shift=4)
    v = np.array([-100, -1, 0, 1, 15, 16, 100, 32767])
    assert spec.leak(v, p).tolist() == [-100 - (-100 >> 4), 0, 0, 1, 15, 15, 94, 32767 - 2047]


def test_one_step_by_hand():
    p = spec.LifParams(neurons=4, inputs=4, lanes=1, threshold=10)
    v = np.array([0, 20, -5, 9])
    cur = np.array([11, 0, 3, 2])
    v2, ref, s = spec.lif_step(v, np.zeros(4), cur, p)
    # leak: round_half_up(v·236/256) = 0, 18, −5 (−4.61 → −5), 8 (8.30)
    assert spec.leak(v, p).tolist() == [0, 18, -5, 8]
    assert s.tolist() == [1, 1, 0, 0]  # 11 > 10, 18 > 10, −2, 10 is not > 10 (strict)
    assert v2.tolist() == [1, 8, -2, 10]  # subtractive reset
    assert ref.tolist() == [0, 0, 0, 0]


def test_zero_reset_and_refractory():
    p = spec.LifParams(neurons=1, inputs=1, lanes=1, threshold=5, reset="zero", refractory=2,
                       leak_mode="shift", leak_shift=8)
    w = np.array([[10]])
    spikes, mems = spec.lif_array(w, [[0]] * 6, p)
    # fires, ignores input for 2 steps (membrane only leaks), fires again
    assert spikes[:, 0].tolist() == [1, 0, 0, 1, 0, 0]
    assert mems[:, 0].tolist() == [0, 0, 0, 0, 0, 0]


def test_membrane_saturates():
    p = spec.LifParams(neurons=1, inputs=8, lanes=1, mem_bits=8, threshold=127,
                       weight_bits=8)
    w = np.full((1, 8), -128)
    _, mems = spec.lif_array(w, [np.arange(8)] * 3, p)
    assert mems[:, 0].tolist() == [-128, -128, -128]


def test_spiking_layer_is_additions_equal_to_a_product_with_counts():
    p = spec.LifParams(neurons=8, inputs=32, lanes=2)
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, (8, 32))
    ev = rng.integers(0, 32, 20)  # repeated addresses add again
    counts = np.bincount(ev, minlength=32)
    assert np.array_equal(spec.spiking_layer(w, ev, p), w @ counts)
    assert spec.events_from_counts(counts[None])[0].tolist() == sorted(ev.tolist())


def test_lanes_do_not_change_the_function():
    rng = np.random.default_rng(1)
    w = rng.integers(-8, 8, (12, 16))
    steps = [rng.integers(0, 16, rng.integers(0, 10)) for _ in range(8)]
    outs = [spec.lif_array(w, steps, spec.LifParams(neurons=12, inputs=16, lanes=ln,
                                                   weight_bits=4, threshold=6))
            for ln in (1, 3, 12)]
    for s, v in outs[1:]:
        assert np.array_equal(s, outs[0][0]) and np.array_equal(v, outs[0][1])
    assert outs[0][0].sum() > 0


def test_weight_words_layout():
    p = spec.LifParams(neurons=6, inputs=5, lanes=3, weight_bits=4)
    w = np.arange(30).reshape(6, 5) % 16 - 8
    words = spec.weight_words(w, p)
    assert len(words) == p.weight_depth == 10
    for i in range(5):
        for k in range(2):
            assert unpack_lanes(words[i * 2 + k], 4, 3).tolist() == w[3 * k:3 * k + 3, i].tolist()


def test_cycles_and_action_counts():
    p = spec.LifParams(neurons=16, lanes=4)
    assert spec.step_cycles(p, 0) == 4 and spec.step_cycles(p, 5) == 24
    assert spec.stream_cycles(p, [5, 0, 2]) == 24 + 4 + 12 + spec.PIPELINE_DEPTH
    c = spec.action_counts(p, [5, 0, 2])
    assert c["synaptic_op"] == 7 * 16 and c["lif_update"] == 3 * 16
    assert c["weight_read_bits"] == 7 * 16 * 8 and c["cycles"] == spec.stream_cycles(p, [5, 0, 2])


@pytest.mark.parametrize("kw,msg", [
    ({"lanes": 3}, "must divide neurons"),
    ({"threshold": 0}, "threshold 0"),
    ({"mem_bits": 8, "threshold": 200}, "threshold 200"),
    ({"leak_mode": "exp"}, "leak_mode"),
    ({"leak_mult": 300}, "leak must be"),
    ({"reset": "none"}, "reset"),
    ({"weight_bits": 1}, "weight_bits"),
    ({"leak_rounding": "up"}, "leak_rounding"),
])
def test_bad_parameters(kw, msg):
    with pytest.raises(HwsimError, match=msg):
        spec.LifParams(**kw)


def test_bad_inputs():
    p = spec.LifParams(neurons=4, inputs=4, lanes=1)
    w = np.zeros((4, 4), int)
    with pytest.raises(HwsimError, match="outside"):
        spec.lif_array(w, [[4]], p)
    with pytest.raises(HwsimError, match="more than inputs"):
        spec.lif_array(w, [[0] * 5], p)
    with pytest.raises(HwsimError, match="shape"):
        spec.lif_array(np.zeros((3, 4), int), [[0]], p)
    with pytest.raises(HwsimError, match="range"):
        spec.lif_array(np.full((4, 4), 200), [[0]], p)
    assert dataclasses.replace(p, lanes=2).chunks == 2
