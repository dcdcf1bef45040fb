"""cocotb tier of the TINT → Booth front end on Icarus and Verilator: == golden, cycles ==
formula; tokens back to back with their own ``amax``/``cos``/``sin``/``mults`` driven with
their first ``x`` beat only, with and without back-pressure, at the parameter corners."""

import pytest

from hwsim.kernels import get_kernel
from hwsim.sim import runner

pytestmark = pytest.mark.cocotb
KERNEL = get_kernel("qkv-frontend")


def _check(report, tokens_cases: bool):
    assert report.passed, report.failures
    for c in report.cases:
        assert c["bit_exact"], c["name"]
        assert c["cycles_match"] or not c["timed"], c["name"]
    if tokens_cases:
        # the next token's first beat was taken while the previous token's codes went out
        assert any(f[t + 1] < lo[t] for c in report.cases
                   for f, lo in [(c["token_first_x"], c["token_last_out"])]
                   for t in range(len(lo) - 1))
        assert any(c["timed"] for c in report.cases)


# lanes == hidden (one beat per token), lanes == 1, heads == kv_heads, GQA with the smallest
# head (a whole token fits in the MVUs' pipelines)
_CORNERS = {
    "lanes_eq_hidden_gqa": dict(hidden=8, heads=2, kv_heads=1, head_dim=4, lanes=8),
    "lanes_1": dict(hidden=4, heads=2, kv_heads=1, head_dim=2, lanes=1),
    "mha": dict(hidden=8, heads=2, kv_heads=2, head_dim=4, lanes=4),
    "tiny_head": dict(hidden=8, heads=1, kv_heads=1, head_dim=2, lanes=8),
}


@pytest.mark.parametrize("corner", list(_CORNERS))
def test_tokens_back_to_back_icarus(tmp_path, corner):
    p = KERNEL.params(**_CORNERS[corner])
    cases = [c for c in KERNEL.cases(p, seed=2) if c["name"].startswith("tokens_")]
    assert {c["name"] for c in cases} == {"tokens_back_to_back", "tokens_stall50",
                                          "tokens_stall90"}
    _check(runner.simulate(KERNEL, p, cases, tmp_path, sim="icarus"), tokens_cases=True)


@pytest.mark.slow
def test_tokens_back_to_back_verilator(tmp_path):
    p = KERNEL.params(**_CORNERS["lanes_eq_hidden_gqa"])
    cases = [c for c in KERNEL.cases(p, seed=3) if c["name"].startswith("tokens_")]
    _check(runner.simulate(KERNEL, p, cases, tmp_path, sim="verilator"), tokens_cases=True)
