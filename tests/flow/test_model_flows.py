"""`hwsim run snn|swiftchannel|airfm`: each model's flow on tiny sizes, resume, and bad input.

The default suite runs airfm's whole flow on tiny sizes (`hwsim compile` of the whole token
network, Icarus, no synthesis) and, for snn and swiftchannel, whose compiles take longer (snn
≈ 2 min: `hwsim compile` of the full-size per-step graph, two steps of a sample on Icarus;
swiftchannel runs `hwsim compile` on its whole network),
the first three steps (train or load the QAT model → ONNX checked against torch → integer
golden == QAT); each then runs again to see that nothing is redone. Their whole chain down to
cocotb and the report is the slow test.
"""

import json

import pytest

from hwsim.cli import build_parser, main
from hwsim.flow import model_flow

MODELS = ("snn", "swiftchannel", "airfm")


def _flow(model, out, *extra):
    args = build_parser().parse_args(["run", model, "--tiny", "-o", str(out), *extra])
    return model_flow(model, args)


@pytest.mark.parametrize("model", ["snn", "swiftchannel"])
def test_first_steps_tiny_then_cached(tmp_path, model):
    out = tmp_path / "b"
    flow = _flow(model, out)
    flow.steps = flow.steps[:3]  # train → export → golden
    a = flow.run(progress=lambda _s: None)
    if model == "snn":  # == is the model's guarantee at every level it has
        assert a["export"]["equal_spike_counts"] == a["export"]["samples"] > 0
        assert a["golden"]["equal_spike_counts"] == a["golden"]["samples"]
        assert a["golden"]["accuracy_integer"] == pytest.approx(a["train"]["accuracy_quant"])
    else:
        nm = a["golden"]["nmse_db"]
        assert set(nm) == {"ls", "ls_sionna", "lmmse", "float", "int8"}
        assert a["export"]["qcdq_mismatches"] == a["export"]["qonnx_mismatches"] == 0
        # the batch-1 file hwsim compile reads: its codes on the real input == the golden's
        assert a["export"]["compile_file_mismatches"] == 0
        assert a["export"]["real_input_codes"] > 0
    seen = []
    again = _flow(model, out)
    again.steps = again.steps[:3]
    again.run(progress=seen.append)
    assert sum("done earlier (cached)" in s for s in seen) == 3


@pytest.mark.cocotb
@pytest.mark.parametrize("model", [pytest.param("snn", marks=pytest.mark.slow),
                                   pytest.param("swiftchannel", marks=pytest.mark.slow),
                                   "airfm"])
def test_flow_end_to_end_tiny(tmp_path, model, capsys):
    out = tmp_path / "b"
    assert main(["run", model, "--tiny", "-o", str(out)]) == 0
    report = (out / "report" / "report.md").read_text()
    for section in ("Model metric: float vs quantized", "Bit-exactness at each level",
                    "Cycles: estimated vs simulated", "Estimate on", "Tools"):
        assert section in report, section
    assert "data:image/png;base64," in (out / "report" / "report.html").read_text()
    sim = json.loads((out / "sim" / "step.json").read_text())["artifact"]
    if model == "swiftchannel":  # `hwsim compile` of the exported integer ONNX
        assert sim["rtl_equals_golden"] is True and sim["cycles_match"] is True
        assert sim["codes_equal_golden"] is True and sim["output_codes"] > 0
        assert sim["cycles_measured"] == sim["cycles"]
        rtl = json.loads((out / "rtl" / "step.json").read_text())["artifact"]
        kernels = [k["kernel"] for k in rtl["kernels"]]
        assert {"swiftchannel-conv", "swiftchannel-gate"} == set(kernels)
        assert (out / "rtl" / rtl["verilog"]).is_file()
        est = json.loads((out / "estimate" / "step.json").read_text())["artifact"]
        assert est["metrics"]["latency_cycles"] == sim["cycles"]
        assert [c["equal"] for c in est["calibration"]] == [True]
        assert est["pipeline"]["compiled_over_pipeline"] == pytest.approx(
            sim["cycles"] / est["pipeline"]["cycles"])
        assert est["metrics"]["dsps"] > 0 and est["metrics"]["energy_per_inference_uj"] > 0
        _swiftchannel_sim_fails_loudly(tmp_path, out)
    elif model == "snn":  # `hwsim compile` of the exported per-step graph on a real sample
        assert sim["rtl_equals_golden"] is True and sim["cycles_match"] is True
        assert sim["cycles_measured"] == sim["cycles"] and sim["sim_steps"] == 2
        assert sim["counts_equal_torch"] is True and sim["input_events"] > 0
        assert [x["layer"] for x in sim["layers"]][1:] == ["fc1", "fc2"]
        rtl = json.loads((out / "rtl" / "step.json").read_text())["artifact"]
        assert [k["kernel"] for k in rtl["kernels"]] == ["lif-array"] * 3
        assert (out / "rtl" / rtl["verilog"]).is_file()
        es = json.loads((out / "estimate" / "step.json").read_text())["artifact"]
        m = es["metrics"]
        assert m["simulated_cycles"] == sim["cycles"] < m["inference_cycles"]
        assert m["inference_steps"] == 35 and m["area_mm2"] > 0 and m["energy_uj"] > 0
        assert m["synaptic_ops_per_inference"] > 0
        assert [c["equal"] for c in es["calibration"]] == [True]
        _snn_sim_fails_loudly(tmp_path, out)
    if model == "airfm":  # the whole token network through `hwsim compile`
        g = json.loads((out / "golden" / "step.json").read_text())["artifact"]
        assert {r["profile"] for r in g["rows"]} == {"CDL-B", "CDL-D"}
        assert g["sample_shape"] == [1, 4 * 8, 2 * 4 + 16]  # window-major tokens + FS-PE
        assert sim["unsupported"] == [] and sim["rtl_equals_golden"] is True
        assert sim["cycles_match"] and sim["cycles_measured"] == sim["cycles"]
        low = json.loads((out / "sim" / "compile" / "lower" / "step.json").read_text())
        bound = max(max(st["bound_lsb"].values(), default=0)
                    for st in low["artifact"]["steps"]["steps"])
        assert sim["max_error_lsb_vs_onnxruntime"] <= bound
        es = json.loads((out / "estimate" / "step.json").read_text())["artifact"]
        c, att = es["compiled"], es["attention"]
        assert c["cycles"] == sim["cycles"] and c["fits"] and c["luts"] > 0
        assert c["latency_us"] == pytest.approx(c["cycles"] / es["clock_mhz"])
        assert att["attention_cycles_compiled"] <= att["attention_cycles_window"] \
            < att["attention_cycles_global"]
    capsys.readouterr()
    assert main(["run", model, "--tiny", "-o", str(out)]) == 0
    assert capsys.readouterr().out.count("done earlier (cached)") == 7


def _snn_sim_fails_loudly(tmp_path, out):
    """The sim step on the finished build, with one compiled spike or torch's counts changed:
    it raises."""
    import shutil

    import numpy as np

    from hwsim.errors import HwsimError
    from hwsim.flow.core import StepContext
    from hwsim.flow.snn import _sim

    bad = tmp_path / "bad-snn"
    shutil.copytree(out, bad)
    arts = {s: json.loads((bad / s / "step.json").read_text())["artifact"]
            for s in ("train", "export", "golden", "rtl")}
    ctx = StepContext(bad, tmp_path / "staging", _flow("snn", bad).options, arts)
    assert _sim(ctx)["all_bit_exact"] is True  # untouched: passes
    sample = bad / "rtl" / "compile" / "lower" / "sample.npz"
    z = dict(np.load(sample))
    z["c1"][0] ^= 1  # one spike of the conv layer flipped
    np.savez(sample, **z)
    with pytest.raises(HwsimError, match=r"the spikes of conv .* differ from the integer SNN"):
        _sim(ctx)
    z["c1"][0] ^= 1
    np.savez(sample, **z)
    arts["export"]["sample_counts_torch"][0] += 1
    with pytest.raises(HwsimError, match=r"output spike counts .* differ from torch's"):
        _sim(ctx)
    arts["rtl"]["summary"]["rtl_equals_golden"] = False
    with pytest.raises(HwsimError, match="RTL == golden False"):
        _sim(ctx)


def _swiftchannel_sim_fails_loudly(tmp_path, out):
    """The sim step on the finished build, with one golden output code changed: it raises."""
    import shutil

    import numpy as np

    from hwsim.errors import HwsimError
    from hwsim.flow.core import StepContext
    from hwsim.flow.swiftchannel import _sim

    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    z = dict(np.load(bad / "golden" / "golden.npz"))
    z["y_codes"].flat[0] = (z["y_codes"].flat[0] + 1) % 256
    np.savez(bad / "golden" / "golden.npz", **z)
    arts = {s: json.loads((bad / s / "step.json").read_text())["artifact"]
            for s in ("train", "export", "golden", "rtl")}
    flow = _flow("swiftchannel", bad)
    ctx = StepContext(bad, tmp_path / "staging", flow.options, arts)
    with pytest.raises(HwsimError, match=r"1 of \d+ output codes differ from the golden"):
        _sim(ctx)
    arts["rtl"]["summary"]["rtl_equals_golden"] = False
    with pytest.raises(HwsimError, match="RTL == golden False"):
        _sim(ctx)


@pytest.mark.parametrize("args, message", [
    (["swiftchannel", "--target", "vitallm"],
     "swiftchannel does not map to target 'vitallm'; targets: xczu49dr, xczu48dr, xczu28dr"),
    (["snn", "--target", "ecp5"], "unknown target 'ecp5'; targets: "),
    (["airfm", "--bits", "3"], "airfm QAT nets have 8- or 4-bit weights, not --bits 3"),
    (["snn", "--bits", "9"], "snn weight bits must be 2 … 8, not 9"),
    (["swiftchannel", "--bits", "4"], "swiftchannel's hardware is int8; --bits 4"),
    (["lenet"], "unknown model 'lenet' for `hwsim run`; choose one of bitnet, ternary-mvu, "
                "snn, swiftchannel, airfm"),
])
def test_bad_input_one_line_exit_2(tmp_path, capsys, args, message):
    assert main(["run", *args, "-o", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hwsim: error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("model", MODELS)
def test_unwritable_build_folder(tmp_path, capsys, model):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["run", model, "--tiny", "-o", str(blocker / "b")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hwsim: error: build folder {blocker / 'b'} is not writable")
    assert err.count("\n") == 1


def test_sweep_folder_must_be_a_finished_sweep_of_the_model(tmp_path, capsys):
    assert main(["run", "snn", "--sweep", str(tmp_path / "none"), "-o", str(tmp_path / "b")]) == 2
    assert "is not a finished `hwsim sweep` folder" in capsys.readouterr().err
    s = tmp_path / "s"
    s.mkdir()
    (s / "results.json").write_text(json.dumps([{"weights": 2, "context": {"limit": 20}}]))
    (s / "metric_vs_bits.png").write_bytes(b"")
    assert main(["run", "airfm", "--sweep", str(s), "-o", str(tmp_path / "b")]) == 2
    assert f"--sweep {s} is not a sweep of airfm" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
