"""The weight-streamed ternary projection's specification: DRAM layout, numbers, burst plan,
cycle formula (closed form against the exact recurrence), the weight-traffic bound, refusals."""

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import ternary_mvu
from hwsim.golden.vitallm import weight_stream as ws
from models.bitnet.hf import pack_ternary_rows, unpack_ternary_rows

RNG = np.random.default_rng(3)


def _w(rows, cols):
    return RNG.integers(-1, 2, (rows, cols))


@pytest.mark.parametrize("rows, cols", [(4, 1), (8, 16), (12, 40), (64, 96)])
def test_dram_layout_is_the_hugging_face_packing(rows, cols):
    w = _w(rows, cols)
    assert np.array_equal(ws.pack_rows(w), pack_ternary_rows(w))
    assert np.array_equal(unpack_ternary_rows(ws.pack_rows(w), rows), w)


def test_dram_image_and_output_rows():
    p = ws.WeightStreamParams(rows=8, cols=8, data_bytes=4, burst_beats=2)
    w = _w(8, 8)
    img = ws.dram_image(w, p)
    assert img == pack_ternary_rows(w).tobytes() and len(img) == p.weight_bytes == 16
    # byte (j, c) at j*cols + c: bits [2i, 2i+2) hold W[j + 2i, c] + 1
    assert (img[1 * 8 + 5] >> 4) & 3 == w[1 + 2 * 2, 5] + 1
    assert ws.output_rows(p).tolist() == [[0, 2, 4, 6], [1, 3, 5, 7]]


def test_numbers_are_the_ternary_mvu():
    w, x = _w(16, 32), RNG.integers(-128, 128, 32)
    assert np.array_equal(ws.weight_stream(w, x, 12345, 17),
                          ternary_mvu.ternary_mvu(w, x, 12345, 17))


def test_burst_plan_covers_the_weights_in_order():
    p = ws.WeightStreamParams(rows=12, cols=32, data_bytes=8, burst_beats=5, base_addr=0x100)
    plan = ws.burst_plan(p)
    assert plan == [(0x100, 5), (0x128, 5), (0x150, 2)]
    assert sum(n for _, n in plan) * 8 == p.weight_bytes


CONFIGS = [dict(rows=r, cols=c, data_bytes=d, burst_beats=b)
           for r, c, d, b in [(8, 16, 4, 4), (12, 32, 8, 3), (64, 256, 16, 16), (16, 8, 8, 1),
                              (4, 64, 16, 256)]]


@pytest.mark.parametrize("kw", CONFIGS)
@pytest.mark.parametrize("bpc_div", [1, 2, 4])
@pytest.mark.parametrize("lat", [0, 1, 20, 100])
def test_closed_form_is_the_recurrence_when_stall_free(kw, bpc_div, lat):
    p = ws.WeightStreamParams(**kw, dram_bytes_per_cycle=kw["data_bytes"])
    bpc = max(1, kw["data_bytes"] // bpc_div)
    for O in (None, 1, 2, 4, 64):
        dram = ws.DramTiming(bpc, lat, O)
        exact = ws.beat_cycles(p, dram)[-1] + ws.PIPELINE_DEPTH + 1
        low, high = ws.projection_cycles_bounds(p, dram)
        assert ws.projection_cycles(p, dram) == exact
        assert low <= exact <= high
        if ws.stall_free(p, dram):
            assert low == exact == high
    # unbounded outstanding reads: the closed form, always
    T = kw["data_bytes"] // bpc
    assert ws.projection_cycles(p, ws.DramTiming(bpc, lat)) == \
        max(2 + lat, p.chunks) + (p.beats - 1) * T + 5


def test_one_outstanding_burst_pays_the_latency_per_burst():
    p = ws.WeightStreamParams(rows=8, cols=64, data_bytes=16, burst_beats=2)  # 4 bursts
    dram = ws.DramTiming(16, 10, 1)
    assert not ws.stall_free(p, dram)
    # burst k+1's AR the cycle after burst k's last beat, its data 1 + 10 cycles later
    assert ws.beat_cycles(p, dram) == [12, 13, 25, 26, 38, 39, 51, 52]


def test_decode_is_within_ten_percent_of_the_weight_traffic_bound():
    """A BitNet-2B-sized projection (2560 × 2560) with 64 ternary lanes (16-byte beats) at
    16, 8 and 4 bytes/cycle and 100 cycles of DRAM latency."""
    p = ws.WeightStreamParams(rows=2560, cols=2560, data_bytes=16, burst_beats=16)
    for bpc in (16, 8, 4):
        dram = ws.DramTiming(bpc, 100)
        ratio = ws.projection_cycles(p, dram) / ws.weight_stream_bound_cycles(p, dram)
        assert 1.0 < ratio < 1.002, (bpc, ratio)  # 1.0016 at 16 B/cycle: x loads in 160


@pytest.mark.parametrize("kw, message", [
    (dict(dram_bytes_per_cycle=0), "bytes_per_cycle must be at least 1, not 0"),
    (dict(dram_latency=-1), "latency must be at least 0, not -1"),
    (dict(dram_bytes_per_cycle=32), "bandwidth 32 bytes/cycle must divide the 16-byte"),
    (dict(dram_bytes_per_cycle=6), "bandwidth 6 bytes/cycle must divide the 16-byte"),
    (dict(rows=10), r"rows \(10\) must be a multiple of 4"),
    (dict(cols=40), r"data_bytes \(16\) must divide cols \(40\)"),
    (dict(data_bytes=12, cols=48), "power of two"),
    (dict(burst_beats=257), "burst_beats must be ≤ 256"),
    (dict(base_addr=8), "not aligned to the 16-byte bus"),
    (dict(rows=256, cols=256, burst_beats=3), "burst 85 .* crosses a 4 KiB boundary"),
    (dict(base_addr=4096 - 16, burst_beats=2), "burst 0 .* crosses a 4 KiB boundary"),
    (dict(addr_width=8), "past the 8-bit address space"),
])
def test_bad_configurations_are_one_line(kw, message):
    with pytest.raises(HwsimError, match=message) as e:
        ws.WeightStreamParams(**kw)
    assert "\n" not in str(e.value)


def test_bad_dram_timing_is_one_line():
    with pytest.raises(HwsimError, match="memory DRAM latency must be at least 0, not -5"):
        ws.DramTiming(4, -5)
    with pytest.raises(HwsimError, match="max_outstanding must be at least 1, not 0"):
        ws.DramTiming(4, 0, 0)
