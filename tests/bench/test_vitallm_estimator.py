"""The estimator's cycles on the decode-model RTL's micro-architecture (``hwsim bench vitallm``'s
``est_cycles_per_token`` / ``est_prefill_cycles``)."""

from hwsim.bench.vitallm import estimator_cycles
from hwsim.golden.vitallm import decode_model as dm


def _p(**kw):
    return dm.DecodeModelParams(heads=4, kv_heads=2, head_dim=32, ffn=352, tokens=32, keep=8,
                                layers=2, vocab=256, max_len=256, **kw)


def test_estimator_cycles_follow_the_rtl_configuration():
    p = _p()
    e = estimator_cycles(p, 16, 32, 8)
    assert 0 < e["est_cycles_per_token"] < e["est_prefill_cycles"]
    # twice the lanes: fewer compute cycles; the same weights behind a 1 B/cycle DRAM: at
    # least the weights' bytes (2 bits a weight) in cycles
    assert estimator_cycles(_p(lanes=32), 16, 32, 8)["est_cycles_per_token"] < \
        e["est_cycles_per_token"]
    slow = estimator_cycles(p, 1, 32, 8)["est_cycles_per_token"]
    assert slow >= dm.dram_bytes(p)["weights"] > e["est_cycles_per_token"]
