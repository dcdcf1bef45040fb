"""The SiLU-gated FFN of the 1bitLLM configurations in the estimator: the workload carries one
``silu_mul`` op per layer (act="silu" configs only), priced by ffn-in's golden formulas."""

import pytest

from hwsim.estimate.arch import load_arch
from hwsim.estimate.kernels import cost
from hwsim.estimate.workload import bitnet_workload
from hwsim.golden.vitallm import ffn_in as g
from models.bitnet.config import get_config


@pytest.mark.parametrize("model, config", [("bitnet-700m", "700M"), ("bitnet-1.3b", "1.3B"),
                                           ("bitnet-3b", "3B"), ("bitnet-2b4t", "2B4T")])
def test_silu_op_only_for_silu_configs(model, config):
    cfg = get_config(config)
    for phase, n in (("decode", 1), ("prefill", 16)):
        ops = {op.name: op for op in bitnet_workload(model, phase, tokens=n).layers[0].ops}
        assert ("ffn_act" in ops) == (cfg.act == "silu")
        if cfg.act == "silu":
            op = ops["ffn_act"]
            assert (op.kernel, op.shape, op.vectors) == ("silu_mul", {"length": cfg.ffn}, n)
            names = list(ops)
            assert names.index("w3") < names.index("ffn_act") < names.index("w2")


def test_silu_price_is_the_golden_formula():
    arch = load_arch("vitallm")
    lanes, f = arch["nonlinear.lanes"], get_config("3B").ffn
    c = cost("silu_mul", {"length": f}, 4, arch)
    assert c.core == "nonlinear"
    assert c.cycles == g.silu_stream_cycles(f, lanes, 4) == 4 * -(-f // lanes) + g.SILU_DEPTH
    assert c.actions == {"mul32": 3 * 4 * f, "register_read_bits": 7 * 4 * f, "add32": 4 * f}
