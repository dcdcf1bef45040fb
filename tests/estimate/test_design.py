"""Pricing a compiled design: nodes' kernel instances × the target's tables."""

import pytest

from hwsim.errors import HwsimError
from hwsim.estimate import load_arch, load_tables
from hwsim.estimate.design import PRICING, estimate_design
from hwsim.estimate.engine import action_energy
from hwsim.estimate.fpga import (
    INT8_MVU_CALIBRATION_CONFIGS,
    INT8_MVU_VALIDATION_CONFIGS,
    int8_mvu_resources,
    tint_tile_resources,
)
from hwsim.golden.common import int8_mvu as mvu
from hwsim.golden.vitallm import ternary_mvu as tmvu
from hwsim.kernels import KERNELS

FC1 = mvu.Int8MvuParams(lanes=8, rows=64, cols=32, mult_bits=24, bias=True)
FC2 = tmvu.TernaryMvuParams(lanes=16, rows=32, cols=64)
NODES = [("fc1", "int8-mvu", FC1, 4), ("fc2", "ternary-mvu", FC2, 3)]


@pytest.mark.parametrize("target", ["xczu28dr", "vitallm"])
def test_totals_are_the_sums_of_the_nodes(target):
    r = estimate_design(NODES, target)
    fc1, fc2 = r["nodes"]
    assert (fc1["cycles"], fc2["cycles"]) == (mvu.latency_cycles(FC1), tmvu.latency_cycles(FC2))
    assert r["cycles"] == 4 * fc1["cycles"] + 3 * fc2["cycles"]
    assert r["cycles_source"] == "sum of node cycles × vectors"
    clock = load_arch(target)["clock"]
    assert r["latency_us"] == pytest.approx(1e6 * r["cycles"] / clock)
    assert r["dynamic_energy_uj"] == pytest.approx(fc1["energy_uj"] + fc2["energy_uj"])
    assert r["power_mw"] == pytest.approx(r["energy_uj"] / r["latency_us"] * 1e3)
    # golden action counts × vectors, in the estimator's vocabulary
    golden = mvu.action_counts(FC1, 4)
    assert fc1["actions"]["int8_mul"] == golden["mac"] == 4 * FC1.rows * FC1.cols
    assert fc1["actions"]["weight_read_bits"] == golden["weight_read_bits"]
    assert fc2["actions"]["ternary_add"] == tmvu.action_counts(FC2, 3)["ternary_add"]
    if target == "vitallm":
        assert r["area_mm2"] == pytest.approx(fc1["area_mm2"] + fc2["area_mm2"])
        assert r["area_mm2"] == pytest.approx(r["logic_mm2"] + r["sram_mm2"])
        assert r["static_energy_uj"] == pytest.approx(0.1 * r["dynamic_energy_uj"])
    else:
        tables = load_tables("fpga_usplus")
        m, t = int8_mvu_resources(FC1, tables), tint_tile_resources(FC2, tables)
        assert (fc1["luts"], fc1["dsps"], fc1["brams"]) == (m["luts"], m["dsps"], m["bram36"])
        assert (fc2["luts"], fc2["ffs"]) == (t["luts"], t["ffs"])
        for k in ("luts", "ffs", "dsps", "brams"):
            assert r[k] == pytest.approx(fc1[k] + fc2[k])
        assert r["dsps"] == FC1.lanes + 4  # 8 products + a 33 × 25-bit requantization product
        assert r["fits"] is True


def test_energy_is_actions_times_the_table():
    arch = load_arch("xczu28dr")
    e = action_energy(arch, load_tables(arch.tables))
    r = estimate_design(NODES[:1], "xczu28dr")
    a = r["nodes"][0]["actions"]
    want = sum(n * (e["register_read_bits"] if k == "out_bits" else e[k]) for k, n in a.items())
    assert r["nodes"][0]["energy_uj"] == pytest.approx(1e6 * want)


def test_caller_cycles_and_clock():
    r = estimate_design(NODES, "vitallm", cycles=1000, clock_mhz=250)
    assert (r["cycles"], r["cycles_source"], r["clock_mhz"]) == (1000, "caller", 250)
    assert r["latency_us"] == pytest.approx(4.0)


def test_a_too_big_design_does_not_fit():
    big = mvu.Int8MvuParams(lanes=4400, rows=1, cols=4400)
    r = estimate_design([("big", "int8-mvu", big, 1)], "xczu28dr")
    assert r["fits"] is False and r["limiting"] == "dsps"
    assert r["utilization"]["dsps"] > 1
    small = estimate_design(NODES, "xczu28dr")
    assert small["fits"] is True


@pytest.mark.parametrize("nodes, target, message", [
    ([("n", "no-such-kernel", FC1, 1)], "xczu28dr", "unknown kernel 'no-such-kernel'"),
    ([("n", "absmax-barrier", FC1, 1)], "vitallm", "needs AbsmaxBarrierParams"),
    (NODES, "lfe5u-85f", "unknown target 'lfe5u-85f'"),
    ([("n", "int8-mvu", FC1, 0)], "vitallm", "vectors must be an integer ≥ 1"),
    ([NODES[0], NODES[0]], "vitallm", "appears twice"),
    ([], "vitallm", "at least one node"),
])
def test_bad_input_is_one_line(nodes, target, message):
    with pytest.raises(HwsimError, match=message) as e:
        estimate_design(nodes, target)
    assert "\n" not in str(e.value)


def test_a_kernel_without_pricing_is_named():
    from hwsim.golden.vitallm.absmax_barrier import AbsmaxBarrierParams

    assert "absmax-barrier" in KERNELS and "absmax-barrier" not in PRICING
    node = ("bar", "absmax-barrier", AbsmaxBarrierParams(length=8, in_width=16), 1)
    with pytest.raises(HwsimError, match="kernel 'absmax-barrier' has no estimator pricing"
                       ) as e:
        estimate_design([node], "xczu28dr")
    assert "\n" not in str(e.value) and "int8-mvu" in str(e.value)


def test_priced_kernels_are_registered_and_every_golden_action_is_priced():
    for name, pricing in PRICING.items():
        kernel = KERNELS[name]
        params = kernel.params(**kernel.test_params[0])
        assert set(kernel.actions(params)) - {"cycles"} <= set(pricing.actions), name


def test_int8_mvu_coefficients_are_fitted_by_the_calibration_command():
    tables = load_tables("fpga_usplus")
    for res in ("lut", "ff"):
        for k in ("fixed", "per_lane", "per_requant_bit"):
            p = tables.params[f"resource.int8mvu_{res}_{k}"]
            assert p.status == "fitted" and "hwsim bench estimate --calibration" in p.source, p
    assert int8_mvu_resources(mvu.Int8MvuParams(lanes=8), tables)["luts"] > \
        int8_mvu_resources(mvu.Int8MvuParams(lanes=4), tables)["luts"]


@pytest.mark.synth
@pytest.mark.parametrize("cfg", [INT8_MVU_VALIDATION_CONFIGS[0],
                                 pytest.param(INT8_MVU_VALIDATION_CONFIGS[1],
                                              marks=pytest.mark.slow)])
def test_int8_mvu_resource_model_against_yosys(tmp_path, cfg):
    """Held-out configurations (never in the fit): LUT within ±10 %, FF ±20 %, DSP and BRAM
    exact."""
    from hwsim.bench.estimate import int8_mvu_synthesis

    assert cfg not in INT8_MVU_CALIBRATION_CONFIGS
    p, got = int8_mvu_synthesis(cfg, tmp_path)
    est = int8_mvu_resources(p, load_tables("fpga_usplus"))
    assert abs(est["luts"] - got["luts"]) <= 0.1 * got["luts"], (est, got)
    assert abs(est["ffs"] - got["ffs"]) <= 0.2 * got["ffs"], (est, got)
    assert est["dsps"] == got["dsp48e2"] and est["bram36"] == got["bram36"], (est, got)


@pytest.mark.synth
@pytest.mark.slow
def test_int8_mvu_fit_reproduces_the_stored_coefficients(tmp_path):
    from hwsim.bench.estimate import int8_mvu_synthesis
    from hwsim.estimate.fpga import fit_int8_mvu_coefficients

    points = [int8_mvu_synthesis(c, tmp_path / "_".join(map(str, c)))
              for c in INT8_MVU_CALIBRATION_CONFIGS]
    tables = load_tables("fpga_usplus")
    for key, value in fit_int8_mvu_coefficients(points).items():
        assert value == pytest.approx(tables.raw(f"resource.{key}"), abs=1e-3), key


def test_per_row_scales_are_priced_as_their_memory():
    """``per_row_scale``: a ``rows × (mult_bits + shift_bits)`` memory in the inventory (ASIC
    SRAM area) and among the FPGA memories, the cycles unchanged."""
    import dataclasses

    rows = dataclasses.replace(FC1, per_row_scale=True)
    mem = PRICING["int8-mvu"].inventory(rows).memories
    assert ("scales", FC1.rows, FC1.mult_bits + FC1.shift_bits) in mem
    assert not any(m[0] == "scales" for m in PRICING["int8-mvu"].inventory(FC1).memories)
    a, b = (estimate_design([("fc1", "int8-mvu", p, 1)], "vitallm") for p in (FC1, rows))
    assert b["sram_mm2"] > a["sram_mm2"] and b["cycles"] == a["cycles"]
    tables = load_tables("fpga_usplus")
    assert int8_mvu_resources(rows, tables)["luts"] > int8_mvu_resources(FC1, tables)["luts"]
