"""`decode_model.dram_bytes` and `stream_bound_cycles`: a token's off-chip bytes are the bytes
of the load streams' beats (and the Hugging Face packed layout's), the bound is their ceiling
over a DRAM's bytes per cycle."""

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import decode_model as dm
from models.bitnet.hf import pack_ternary_rows

P = dm.DecodeModelParams(ffn=96, heads=4, kv_heads=2, head_dim=16, tokens=8,
                         keep=4, lanes=8, layers=3, vocab=32, res_width=20)


@pytest.mark.parametrize("length", [1, 5, 8])
def test_bytes_are_the_load_streams_beats(length):
    b = dm.dram_bytes(P, length)
    beats = dm.load_beats(P, length)
    word = 2 * P.lanes // 8  # a ternary stream word: lanes weights of 2 bits
    weight_beats = sum(beats[n] for n in ("w", "wo", "w1", "w3", "w2"))
    assert b["weights"] == P.layers * weight_beats * word
    assert b["cfg"] == P.layers * beats["cfg"] * dm.CFG_WORD // 8
    assert b["kv_read"] == P.layers * beats["kv"] * 2 * P.head_dim
    assert b["kv_write"] == P.layers * P.kv_heads * 2 * P.head_dim
    assert b["embed"] == P.hidden * P.res_width // 8
    assert b["total"] == sum(v for k, v in b.items() if k != "total")


def test_weight_bytes_are_the_hf_packed_layout():
    rng = np.random.default_rng(0)
    packed = sum(pack_ternary_rows(rng.integers(-1, 2, (r, c))).nbytes
                 for r, c in P.layer().projection_shapes().values())
    assert dm.dram_bytes(P)["weights"] == P.layers * packed


def test_stream_bound_is_the_ceiling():
    total = dm.dram_bytes(P, 6)["total"]
    for bpc in (1, 7, 16, 64, total, total + 1):
        c = dm.stream_bound_cycles(P, bpc, 6)
        assert (c - 1) * bpc < total <= c * bpc
    # the bound grows with the cache the step reads
    assert dm.stream_bound_cycles(P, 16, 8) > dm.stream_bound_cycles(P, 16, 1)


@pytest.mark.parametrize("bad", [0, -16, 2.5, True, "16"])
def test_bad_bandwidth_one_line(bad):
    with pytest.raises(HwsimError, match="bytes per cycle"):
        dm.stream_bound_cycles(P, bad)


def test_bad_length_refused():
    with pytest.raises(HwsimError, match="length"):
        dm.dram_bytes(P, P.tokens + 1)
