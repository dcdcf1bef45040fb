"""`hwsim run bitnet`: the whole co-design flow on a briefly trained BitNet-tiny, and bad input."""

import json
import subprocess
import sys

import pytest


def hwsim(*args):
    return subprocess.run([sys.executable, "-m", "hwsim.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=1200)


@pytest.mark.parametrize("args, message", [
    (["resnet"], "unknown model 'resnet' for `hwsim run`; choose one of bitnet, ternary-mvu"),
    (["bitnet", "--target", "ecp5"], "unknown target 'ecp5'; targets: "),
    (["bitnet", "--rtl-layer", "9"], "--rtl-layer 9 does not exist (2 layers)"),
])
def test_bad_input(tmp_path, args, message):
    r = hwsim("run", *args, "-o", tmp_path / "b")
    assert r.returncode == 2
    assert r.stderr.startswith(f"hwsim: error: {message}") and r.stderr.count("\n") == 1
    assert not (tmp_path / "b").exists()


def test_unwritable_build_folder_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    r = hwsim("run", "ternary-mvu", "-o", blocker / "b")
    assert r.returncode == 2
    assert r.stderr.startswith(f"hwsim: error: build folder {blocker / 'b'} is not writable")


@pytest.mark.cocotb
def test_flow_end_to_end(tmp_path):
    out = tmp_path / "run"
    r = hwsim("run", "bitnet", "-o", out, "--steps", 2, "--windows", 1, "--rtl-tokens", 2)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = (out / "report" / "report.md").read_text()
    for section in ("Model metric: float vs quantized", "Bit-exactness at each level",
                    "Static int8 layer (hwsim compile) vs the QAT layer",
                    "Cycles: estimated vs simulated", "Estimate on vitallm",
                    "estimator vs published silicon", "Tools"):
        assert section in report, section
    assert "== on 11 of 11 kernel runs" in report  # 7 projections + 4 heads, real activations
    page = (out / "report" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2
    sim = json.loads((out / "sim" / "step.json").read_text())["artifact"]
    assert all(x["cycles"] == x["formula_cycles"] for x in sim["runs"])
    comp = json.loads((out / "compile" / "step.json").read_text())["artifact"]
    assert comp["summary"]["rtl_equals_golden"] is True and comp["summary"]["cycles_match"]
    assert comp["kernels"]["ternary-mvu"] == 7 and comp["kernels"]["attention-head"] == 1
    assert comp["kernels"]["rope"] == 2 and comp["tokens"] == 2
    again = hwsim("run", "bitnet", "-o", out, "--steps", 2, "--windows", 1, "--rtl-tokens", 2)
    assert again.stdout.count("done earlier (cached)") == 8
