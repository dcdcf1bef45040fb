import pytest

from hwsim.golden.common import attention_head as spec
from hwsim.kernels import get_kernel
from hwsim.sim.runner import simulate

KERNEL = get_kernel("attention-head")


@pytest.mark.cocotb
@pytest.mark.slow
@pytest.mark.parametrize("style", ["dsp", "booth"])
def test_full_size_every_length_on_icarus(tmp_path, style):
    # head_dim 64, 128 cached tokens, 16 lanes: causal prefill covers lengths 1 … 128
    p = KERNEL.params(multiplier=style)
    report = simulate(KERNEL, p, KERNEL.cases(p, seed=3), tmp_path, sim="icarus")
    assert report.passed, report.failures
    pre = next(c for c in report.cases if c["name"] == "prefill_causal")
    assert pre["query_lengths"] == list(range(1, 129))
    assert pre["query_cycles"] == [spec.query_cycles(p, n) for n in range(1, 129)]
