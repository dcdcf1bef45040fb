"""The KV-cache writer's specification: read-back, cycle formulas, refusals."""

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import kv_write as kv
from hwsim.golden.vitallm.weight_stream import DramTiming


def test_read_back_is_the_rows_and_the_last_write_wins():
    p = kv.KvWriteParams(row_bytes=8, data_bytes=4, rows=4, base_addr=0x40)
    rows = np.array([[-128] * 8, list(range(8)), [5] * 8])
    mem = bytearray(0x40 + 4 * 8)
    for r, i in zip(rows, [2, 0, 2], strict=True):  # what the DRAM holds after the writes
        mem[0x40 + 8 * i:0x40 + 8 * i + 8] = (r & 0xFF).astype(np.uint8).tobytes()
    want = kv.kv_write(rows, [2, 0, 2], p)
    assert np.array_equal(want, kv.dram_rows(bytes(mem), [2, 0, 2], p))
    assert want[0].tolist() == [5] * 8  # row 2 was written twice


def test_cycle_formulas():
    p = kv.KvWriteParams(row_bytes=64, data_bytes=16)  # 4 beats
    d = DramTiming(4, 2)                                # T = 4 > latency + 4? no: 4 < 6
    assert kv.latency_cycles(p, d) == 3 * 4 + 2 + 5
    assert kv.row_interval_cycles(p, d) == 3 * 4 + 6
    assert kv.row_interval_cycles(p, DramTiming(1, 0)) == 3 * 16 + 16  # bandwidth-bound
    assert kv.stream_cycles(p, 3, d) == 2 * 18 + 19


@pytest.mark.parametrize("kw, message", [
    (dict(row_bytes=48), "row_bytes .48. must be a power of two"),
    (dict(row_bytes=8192), "≤ 4096"),
    (dict(base_addr=32), "not aligned to a 64-byte row"),
    (dict(dram_bytes_per_cycle=0), "bytes_per_cycle must be at least 1, not 0"),
    (dict(dram_latency=-2), "latency must be at least 0, not -2"),
    (dict(rows=0), "rows must be at least 1, not 0"),
])
def test_bad_configurations_are_one_line(kw, message):
    with pytest.raises(HwsimError, match=message) as e:
        kv.KvWriteParams(**kw)
    assert "\n" not in str(e.value)


def test_bad_rows_are_refused():
    p = kv.KvWriteParams(row_bytes=8, data_bytes=8, rows=2)
    with pytest.raises(HwsimError, match="row index outside 0 … 1"):
        kv.kv_write(np.zeros((1, 8)), [2], p)
    with pytest.raises(HwsimError, match="int8 codes"):
        kv.kv_write(np.full((1, 8), 200), [0], p)
