"""The estimator's sparse decode (VitaLLM) uses the golden decoder-layer KV formula."""

import pytest

from hwsim.errors import HwsimError
from hwsim.estimate.workload import bitnet_workload
from hwsim.golden.vitallm.decoder_layer import kv_read_bytes
from models.bitnet.config import get_config


def _kv(wl):
    return sum(op.kv_read_bits for op in wl.layers[0].ops) // 8


@pytest.mark.parametrize("model, cfg", [("bitnet-3b", "3B"), ("bitnet-tiny", "tiny"),
                                        ("bitnet-2b4t", "2B4T")])
def test_kv_bytes_are_the_golden_formula(model, cfg):
    c = get_config(cfg)
    dense = bitnet_workload(model, "decode", 1, 128)
    assert _kv(dense) == kv_read_bytes(c.heads, c.kv_heads, c.head_dim, 128, 128)["dense"]
    assert _kv(bitnet_workload(model, "decode", 1, 128, keep=128)) == _kv(dense)
    for k in (8, 32):
        wl = bitnet_workload(model, "decode", 1, 128, keep=k)
        f = kv_read_bytes(c.heads, c.kv_heads, c.head_dim, 128, k)
        ops = {op.name: op for op in wl.layers[0].ops}
        assert ops["qk"].kv_read_bits + ops["av"].kv_read_bits == 8 * f["sparse"]
        assert ops["select"].kv_read_bits == 8 * f["lo_table"]
        assert _kv(wl) == f["sparse"] + f["lo_table"]
        assert ops["select"].kernel == "lo_topk" and ops["select"].vectors == c.heads
        assert ops["qk"].shape["keys"] == k


def test_bad_keep():
    for k in (0, 129, True):
        with pytest.raises(HwsimError, match="keep"):
            bitnet_workload("bitnet-3b", "decode", 1, 128, keep=k)


def test_cli_keep(capsys):
    import json

    from hwsim.cli import main

    assert main(["estimate", "bitnet-3b", "--target", "vitallm", "--context", "1024",
                 "--json"]) == 0
    dense = json.loads(capsys.readouterr().out)
    assert main(["estimate", "bitnet-3b", "--target", "vitallm", "--context", "1024",
                 "--keep", "64", "--json"]) == 0
    sparse = json.loads(capsys.readouterr().out)
    assert sparse["decode_offchip_mb_per_token"] < dense["decode_offchip_mb_per_token"]
    assert sparse["decode_tokens_per_s"] > dense["decode_tokens_per_s"]
    for bad in (["--keep", "129"], ["--keep", "8", "--validate"]):
        assert main(["estimate", "bitnet-3b", "--target", "vitallm", *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("hwsim: error:") and "\n" not in err
    with pytest.raises(SystemExit) as e:  # argparse's positive_int
        main(["estimate", "bitnet-3b", "--target", "vitallm", "--keep", "0"])
    assert e.value.code == 2
