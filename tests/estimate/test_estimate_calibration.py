"""Calibration against hwsim's own RTL: cycles from simulation, resources from yosys."""

import numpy as np
import pytest

from hwsim.estimate import load_arch, load_tables
from hwsim.estimate.fpga import (
    BARRIER_VALIDATION_CONFIGS,
    VALIDATION_CONFIGS,
    barrier_resources,
    tint_tile_resources,
)
from hwsim.estimate.kernels import cost
from hwsim.golden.common.lanes import pack_lanes
from hwsim.golden.vitallm import ternary_mvu as tmvu
from quant.qtype import quantize_multiplier


def _arch(lanes):
    return load_arch("vitallm").with_values({"tint.tiles": 1, "tint.lanes": lanes})


def _data(p, vectors, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.integers(-1, 2, (p.rows, p.cols))
    X = rng.integers(-128, 128, (vectors, p.cols))
    M, S = quantize_multiplier(100.0 / max(1, int(np.abs(X @ W.T).max())))
    return W, X, M, S


@pytest.mark.parametrize("lanes, rows, cols, vectors", [(4, 3, 8, 2), (2, 5, 6, 3), (8, 4, 32, 1)])
def test_cycles_equal_amaranth_measurement(lanes, rows, cols, vectors):
    from hwsim.sim.amaranth_bench import Sink, Source, run_streams
    from rtl.vitallm.ternary_mvu import TernaryMVU

    p = tmvu.TernaryMvuParams(lanes=lanes, rows=rows, cols=cols)
    W, X, M, S = _data(p, vectors)
    dut = TernaryMVU(p)
    w = Source(dut.w, tmvu.weight_words(W, lanes))
    x = Source(dut.x, [pack_lanes(v[k * lanes:(k + 1) * lanes], 8) for v in X
                       for k in range(cols // lanes)])
    y = Sink(dut.y, rows * vectors)
    run_streams(dut, [w, x], [y], settle=[(dut.mult, M), (dut.shift, S)])
    measured = y.cycles[-1] - x.cycles[0] + 1
    est = cost("ternary_mvu", {"rows": rows, "cols": cols}, vectors, _arch(lanes))
    assert est.cycles == measured
    got = np.array([v - 256 if v > 127 else v for v in y.values]).reshape(vectors, rows)
    assert np.array_equal(got, tmvu.ternary_mvu(W, X, M, S))


@pytest.mark.cocotb
def test_cycles_equal_cocotb_measurement(tmp_path):
    from hwsim.kernels import get_kernel
    from hwsim.sim.runner import simulate

    kernel = get_kernel("ternary-mvu")
    p = kernel.params(lanes=4, rows=4, cols=8)
    W, X, M, S = _data(p, 2)
    rep = simulate(kernel, p, [{"name": "cal", "arrays": {"W": W, "X": X, "mult": M,
                                                          "shift": S}}], tmp_path, sim="icarus")
    assert rep.passed, rep.failures
    est = cost("ternary_mvu", {"rows": 4, "cols": 8}, 2, _arch(4))
    assert est.cycles == rep.cases[0]["cycles"]


def test_resource_model_on_the_reference_point():
    # issue #5: rows=cols=256, lanes=16 synthesizes to 1455 LUT / 0 DSP / 6 RAMB36E2
    r = tint_tile_resources(tmvu.TernaryMvuParams(lanes=16, rows=256, cols=256),
                            load_tables("fpga_usplus"))
    assert abs(r["luts"] - 1455) <= 0.2 * 1455
    assert r["dsps"] == 0 and r["bram36"] == 6


@pytest.mark.synth
@pytest.mark.parametrize("cfg", [VALIDATION_CONFIGS[0],
                                 pytest.param(VALIDATION_CONFIGS[1], marks=pytest.mark.slow),
                                 pytest.param(VALIDATION_CONFIGS[2], marks=pytest.mark.slow)])
def test_resource_model_against_yosys(tmp_path, cfg):
    """Configurations never used in the fit: LUT within ±20 %, DSP and BRAM exact."""
    from fpga.yosys import synth_xilinx
    from hwsim.kernels import get_kernel
    from rtl.emit import emit

    kernel = get_kernel("ternary-mvu")
    lanes, rows, cols = cfg
    p = kernel.params(lanes=lanes, rows=rows, cols=cols)
    v = emit(kernel.component(p), kernel.top, tmp_path, kernel.manifest(p))
    got = synth_xilinx(v["verilog"], kernel.top, workdir=tmp_path)["resources"]
    est = tint_tile_resources(p, load_tables("fpga_usplus"))
    assert abs(est["luts"] - got["luts"]) <= 0.2 * got["luts"], (est, got)
    assert est["dsps"] == got["dsp48e2"] == 0
    assert est["bram36"] == got["bram36"]


@pytest.mark.parametrize("length, in_width, tokens", [(7, 12, 2), (16, 20, 3), (1, 2, 1)])
def test_barrier_cycles_equal_amaranth_measurement(length, in_width, tokens):
    from hwsim.golden.vitallm import absmax_barrier as ab
    from hwsim.sim.amaranth_bench import Sink, Source, run_streams
    from rtl.vitallm.absmax_barrier import AbsmaxBarrier

    p = ab.AbsmaxBarrierParams(length=length, in_width=in_width)
    A = np.random.default_rng(length).integers(-(1 << in_width - 1), 1 << in_width - 1,
                                               (tokens, length))
    dut = AbsmaxBarrier(p)
    src = Source(dut.a, [int(v) & ((1 << in_width) - 1) for v in A.ravel()])
    snk = Sink(dut.y, A.size)
    run_streams(dut, [src], [snk])
    est = cost("absmax_barrier", {"length": length, "in_width": in_width}, tokens,
               load_arch("vitallm"))
    assert est.cycles == snk.cycles[-1] - src.cycles[0] + 1


@pytest.mark.parametrize("tokens, head_dim, keep", [(8, 4, 3), (16, 6, 5)])
def test_lo_topk_cycles_equal_amaranth_measurement(tokens, head_dim, keep):
    from hwsim.golden.vitallm import lo_topk as lo
    from hwsim.sim.amaranth_bench import Sink, Source, run_streams
    from rtl.vitallm.lo_topk import LoTopK

    p = lo.LoTopKParams(tokens=tokens, head_dim=head_dim, keep=keep)
    rng = np.random.default_rng(tokens)
    q, K = rng.integers(-128, 128, head_dim), rng.integers(-128, 128, (tokens, head_dim))
    dut = LoTopK(p)
    qs = Source(dut.q, [pack_lanes(q, 8)])
    ks = Source(dut.k, [pack_lanes(row, 8) for row in K])
    out = Sink(dut.sel, 1)
    run_streams(dut, [qs, ks], [out])
    est = cost("lo_topk", {"tokens": tokens, "head_dim": head_dim, "keep": keep}, 1,
               load_arch("vitallm"))
    assert est.cycles == out.cycles[0] - qs.cycles[0] + 1


@pytest.mark.cocotb
@pytest.mark.parametrize("kernel_name, params, shape, arrays", [
    ("absmax-barrier", {"length": 8, "in_width": 12}, {"length": 8, "in_width": 12},
     {"A": np.random.default_rng(1).integers(-2048, 2048, (2, 8))}),
    ("lo-topk", {"tokens": 8, "head_dim": 4, "keep": 3}, {"tokens": 8, "head_dim": 4, "keep": 3},
     {"Q": np.random.default_rng(2).integers(-128, 128, (2, 4)),
      "K": np.random.default_rng(3).integers(-128, 128, (8, 4))}),
])
def test_new_blocks_cycles_equal_cocotb(tmp_path, kernel_name, params, shape, arrays):
    from hwsim.kernels import get_kernel
    from hwsim.sim.runner import simulate

    kernel = get_kernel(kernel_name)
    rep = simulate(kernel, kernel.params(**params), [{"name": "cal", "arrays": arrays}],
                   tmp_path, sim="icarus")
    assert rep.passed, rep.failures
    vectors = len(arrays["Q"]) if "Q" in arrays else len(arrays["A"])
    est = cost(kernel_name.replace("-", "_"), shape, vectors, load_arch("vitallm"))
    assert est.cycles == rep.cases[0]["cycles"]


@pytest.mark.synth
@pytest.mark.parametrize("cfg", [BARRIER_VALIDATION_CONFIGS[0],
                                 pytest.param(BARRIER_VALIDATION_CONFIGS[1],
                                              marks=pytest.mark.slow)])
def test_barrier_resource_model_against_yosys(tmp_path, cfg):
    """Held-out absmax-barrier configurations: LUT within ±20 %, DSP and BRAM exact."""
    from fpga.yosys import synth_xilinx
    from hwsim.kernels import get_kernel
    from rtl.emit import emit

    kernel = get_kernel("absmax-barrier")
    p = kernel.params(length=cfg[0], in_width=cfg[1], mul_style="dsp")
    v = emit(kernel.component(p), kernel.top, tmp_path, kernel.manifest(p))
    got = synth_xilinx(v["verilog"], kernel.top, workdir=tmp_path)["resources"]
    est = barrier_resources(p, load_tables("fpga_usplus"))
    assert abs(est["luts"] - got["luts"]) <= 0.2 * got["luts"], (est, got)
    assert est["dsps"] == got["dsp48e2"]
    assert est["bram36"] == got["bram36"]


def test_booth_and_nonlinear_cores_are_priced_from_their_rtl_fit():
    from hwsim.estimate.fpga import lane_resources

    tables = load_tables("fpga_usplus")
    for core in ("booth", "nonlinear"):
        for res in ("lut", "ff", "dsp"):
            p = tables.params[f"resource.{core}_{res}_per_lane"]
            assert p.status == "fitted" and "hwsim bench estimate --calibration" in p.source, p
        one, two = lane_resources(core, 1, tables), lane_resources(core, 2, tables)
        assert all(two[k] >= one[k] >= 0 for k in one), (core, one, two)
    # the Booth multipliers are built from LUTs and carry chains, never DSP48E2 slices
    assert lane_resources("booth", 64, tables)["dsp"] == 0


@pytest.mark.synth
@pytest.mark.slow
@pytest.mark.parametrize("core", ["booth", "nonlinear"])
def test_lane_resource_model_against_yosys(tmp_path, core):
    """Held-out lane counts of the Booth engine and the RMSNorm unit: LUT and FF within ±20 %,
    DSP48E2 exact."""
    from fpga.yosys import synth_xilinx
    from hwsim.bench.estimate import booth_engine
    from hwsim.estimate.fpga import (
        BOOTH_VALIDATION_CONFIGS,
        NONLINEAR_N,
        NONLINEAR_VALIDATION_CONFIGS,
        lane_resources,
    )
    from hwsim.kernels import get_kernel
    from rtl.emit import to_verilog

    if core == "booth":
        lanes, top = BOOTH_VALIDATION_CONFIGS[0], "booth_engine"
        component = booth_engine(lanes)
    else:
        norm = get_kernel("rmsnorm")
        lanes, top = NONLINEAR_VALIDATION_CONFIGS[0], norm.top
        component = norm.component(norm.params(n=NONLINEAR_N, lanes=lanes))
    (tmp_path / f"{top}.v").write_text(to_verilog(component, top))
    got = synth_xilinx(tmp_path / f"{top}.v", top, workdir=tmp_path)["resources"]
    est = lane_resources(core, lanes, load_tables("fpga_usplus"))
    assert abs(est["lut"] - got["luts"]) <= 0.2 * got["luts"], (est, got)
    assert abs(est["ff"] - got["ffs"]) <= 0.2 * got["ffs"], (est, got)
    assert round(est["dsp"]) == got["dsp48e2"], (est, got)
