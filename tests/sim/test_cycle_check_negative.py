"""The cycle check of every kernel's cocotb testbench can fail: each kernel's own RTL made one
cycle slower (:func:`hwsim.sim.checker.one_cycle_late`: one more register on every output
stream) keeps every code and is rejected on every timed case. ``ternary-mvu``, ``rmsnorm``,
``norm-quant`` and ``attention-head`` run theirs in the default suite (their own test files);
the rest are slow."""

import pytest

from hwsim.kernels import get_kernel
from hwsim.sim import runner
from hwsim.sim.checker import one_cycle_late

pytestmark = [pytest.mark.cocotb, pytest.mark.slow]

#: small elaboration parameters per kernel (those of the kernels' own cocotb tests)
SMALL = {
    "absmax-barrier": dict(length=6, in_width=14, mul_style="shift_add"),
    "attn-out": dict(heads=2, head_dim=4, lanes=2, amax_width=12, res_width=20),
    "decode-attention": dict(heads=2, kv_heads=1, head_dim=8, tokens=8, keep=3, lanes=4,
                             exp_lanes=2),
    "ffn-in": dict(hidden=8, ffn=5, lanes=4, res_width=28),
    "ffn-out": dict(hidden=8, ffn=12, lanes=4, prod_width=36, e_width=161, res_width=24),
    "lif-array": dict(lanes=4, threshold=48, neurons=4, inputs=16),
    "lo-topk": dict(tokens=8, head_dim=4, keep=3),
    "qkv-frontend": dict(hidden=16, heads=2, kv_heads=1, head_dim=4, lanes=8),
    "decode-step": dict(hidden=16, heads=2, kv_heads=1, head_dim=4, tokens=6, keep=2, lanes=4,
                        exp_lanes=2),
    "attn-layer": dict(heads=2, kv_heads=1, head_dim=4, tokens=5, keep=2, lanes=4, exp_lanes=2,
                       res_width=28),
    "swiftchannel-conv": dict(ic=2, oc=2, height=3, width=3, k=3, ocp=2),
    "swiftchannel-gate": dict(lanes=2),
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_cycle_check_rejects_one_cycle_late_rtl(tmp_path, name):
    kernel = get_kernel(name)
    p = kernel.params(**SMALL[name])
    report = runner.simulate(one_cycle_late(kernel), p, kernel.cases(p, quick=True), tmp_path,
                             sim="icarus")
    assert not report.passed
    assert all(c["bit_exact"] for c in report.cases), [c["name"] for c in report.cases]
    timed = [c for c in report.cases if c["timed"]]
    assert timed and not any(c.get("cycles_match", c["cycles"] == c["expected_cycles"])
                             for c in timed)
