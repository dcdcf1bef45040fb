"""The FPGA build flow end to end: a real ECP5 bitstream, UltraScale+ resources, the fit check,
skipping finished builds and leaving nothing half-written."""

import json
import os

import pytest

import fpga.build as fb
from fpga.build import REPORT_JSON, REPORT_MD, build
from fpga.parts import PARTS, Part, check_fit
from fpga.yosys import xilinx_resources
from hwsim.errors import HwsimError
from hwsim.kernels import get_kernel

KERNEL = get_kernel("ternary-mvu")
SMALL = KERNEL.params(lanes=4, rows=8, cols=16)

#: JTAG IDCODE of the LFE5U-25F; ecppack writes it into the bitstream's VERIFY_ID command.
LFE5U_25F_IDCODE = bytes.fromhex("41111043")


@pytest.fixture(scope="module")
def ecp5_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("ecp5") / "build"
    return out, build(KERNEL, SMALL, "ecp5-ulx3s-25f", out)


@pytest.mark.synth
def test_ecp5_build_writes_a_real_bitstream_and_report(ecp5_build):
    out, r = ecp5_build
    assert not r["cached"]
    bit = (out / "top.bit").read_bytes()
    head = bit[:256]
    assert b"\xff\xff\xbd\xb3" in head          # ECP5 preamble
    assert LFE5U_25F_IDCODE in head             # built for the 25F die
    assert len(bit) > 100_000
    on_disk = json.loads((out / REPORT_JSON).read_text())
    assert on_disk["key"] == r["key"] and on_disk["part"] == "LFE5U-25F-6BG381C"
    assert r["bitstream"] == "top.bit" and r["fits"] is True
    # utilization from nextpnr's report, against the datasheet capacity
    pnr = json.loads((out / "nextpnr.report.json").read_text())["utilization"]
    assert r["resources"]["luts"]["used"] == pnr["TRELLIS_COMB"]["used"] > 0
    assert r["resources"]["ffs"]["used"] == pnr["TRELLIS_FF"]["used"] >= r["harness"]["source_bits"]
    assert r["resources"]["luts"]["available"] == 24_288
    # Fmax from nextpnr's timing analysis of the board clock
    (clk,) = r["fmax_by_clock"].values()
    assert clk["constraint_mhz"] == 25
    assert r["fmax_mhz"] == clk["achieved_mhz"] > 0
    assert r["timing_met"] == (clk["achieved_mhz"] >= 25)
    md = (out / REPORT_MD).read_text()
    assert f"{r['fmax_mhz']:.2f} MHz" in md and "| LUT |" in md


@pytest.mark.synth
def test_finished_build_is_not_redone(ecp5_build, monkeypatch):
    out, first = ecp5_build
    monkeypatch.setattr(fb, "run_tool", _must_not_run)
    again = build(KERNEL, SMALL, "ecp5-ulx3s-25f", out)
    assert again["cached"] and again["key"] == first["key"]


@pytest.mark.synth
def test_damaged_artifact_or_missing_report_means_not_finished(ecp5_build, tmp_path):
    import shutil

    out, first = ecp5_build
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    assert fb._cached(copy, first["key"]) is not None
    assert fb._cached(copy, "another-key") is None
    with open(copy / "top.bit", "ab") as f:
        f.write(b"\0")
    assert fb._cached(copy, first["key"]) is None
    shutil.copytree(out, tmp_path / "copy2")
    (tmp_path / "copy2" / REPORT_JSON).unlink()
    assert fb._cached(tmp_path / "copy2", first["key"]) is None


def _must_not_run(*a, **k):
    raise AssertionError("a finished build was redone")


def _interrupt(*a, **k):
    raise KeyboardInterrupt


def test_interrupted_build_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(fb, "run_tool", _interrupt)
    out = tmp_path / "b"
    with pytest.raises(KeyboardInterrupt):
        build(KERNEL, SMALL, "ecp5-ulx3s-25f", out)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []       # staging folder removed too


@pytest.mark.synth
def test_interrupted_rebuild_keeps_the_previous_build(ecp5_build, tmp_path, monkeypatch):
    import shutil

    out, first = ecp5_build
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    monkeypatch.setattr(fb, "run_tool", _interrupt)
    with pytest.raises(KeyboardInterrupt):
        build(KERNEL, SMALL, "ecp5-ulx3s-25f", copy, force=True)
    assert fb._cached(copy, first["key"]) is not None
    assert [p.name for p in tmp_path.iterdir()] == ["copy"]


def test_design_too_large_for_the_part_is_refused_before_synthesis(tmp_path):
    big = KERNEL.params(lanes=4, rows=512, cols=1024)   # 1 Mbit of weights > 32 EBR of 18 Kb
    out = tmp_path / "big"
    with pytest.raises(HwsimError) as e:
        build(KERNEL, big, "ecp5-ulx3s-12f", out)
    msg = str(e.value)
    assert "\n" not in msg
    assert "does not fit LFE5U-12F-6BG381C (estimated before synthesis)" in msg
    assert "--no-fit-check" in msg
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.synth
def test_design_too_large_for_the_part_fails_with_one_line_after_synthesis(tmp_path):
    """Past the closed-form check (``fit_check=False``), synthesis's own figures refuse it."""
    big = KERNEL.params(lanes=4, rows=512, cols=1024)   # 1 Mbit of weights > 32 EBR of 18 Kb
    out = tmp_path / "big"
    with pytest.raises(HwsimError) as e:
        build(KERNEL, big, "ecp5-ulx3s-12f", out, fit_check=False)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("ternary-mvu (lanes=4, rows=512, cols=1024")
    assert "does not fit LFE5U-12F-6BG381C: needs EBR (18 Kb)" in msg and "> 32 available" in msg
    assert not out.exists()


@pytest.mark.synth
def test_rfsoc_build_writes_plan_and_ultrascale_resources(tmp_path):
    out = tmp_path / "rfsoc"
    r = build(KERNEL, SMALL, "rfsoc4x2", out, vivado=False)
    for f in ("top.v", "top.xdc", "top.tcl", "build_top.sh", REPORT_JSON, REPORT_MD):
        assert (out / f).is_file(), f
    assert "-part xczu48dr-ffvg1517-2-e" in (out / "top.tcl").read_text()
    assert r["part"] == "xczu48dr-ffvg1517-2-e" and r["bitstream"] is None
    assert r["vivado"]["ran"] is False
    # the resource report parses: yosys's JSON stat → the same counts as the report
    stat = json.loads((out / "yosys" / "top.stat.json").read_text())
    cells = {k: int(v) for k, v in stat["design"]["num_cells_by_type"].items()}
    res = xilinx_resources(cells)
    for k in ("luts", "ffs", "dsp48e2", "bram36", "uram"):
        assert r["resources"][k]["used"] == res[k]
        assert r["resources"][k]["available"] == PARTS["xczu48dr"].capacity[k]
    assert r["resources"]["luts"]["used"] > 100
    assert r["resources"]["ffs"]["used"] >= r["harness"]["source_bits"] + 32
    # the same counts against a part too small for them: one line naming what does not fit
    tiny = Part("xctiny", "xcup", {"luts": 100, "ffs": 10_000, "dsp48e2": 1, "bram36": 1,
                                   "uram": 0}, "test")
    with pytest.raises(HwsimError, match=r"^d does not fit xctiny: needs LUT [\d,]+ > 100 "
                                         r"available$"):
        check_fit({k: v["used"] for k, v in r["resources"].items()}, tiny, "d")


def _fake_vivado(bindir, body):
    """A stand-in ``vivado`` on PATH: checks the plumbing around Vivado, not Vivado itself."""
    bindir.mkdir()
    exe = bindir / "vivado"
    exe.write_text("#!/bin/sh\n" + body)
    exe.chmod(0o755)
    return bindir


@pytest.mark.slow
@pytest.mark.synth
def test_vivado_on_path_runs_the_plan(tmp_path, monkeypatch):
    # the plan's build_top.sh calls `vivado -mode batch -log top.log -source top.tcl`
    bindir = _fake_vivado(tmp_path / "bin", 'test "$5 $6" = "-source top.tcl" || exit 3\n'
                                            'grep -q write_bitstream top.tcl || exit 4\n'
                                            'printf BIT > top.bit\n')
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.delenv("VIVADO", raising=False)
    out = tmp_path / "zcu111"
    r = build(KERNEL, SMALL, "zcu111", out)
    assert r["vivado"] == {"ran": True} and r["bitstream"] == "top.bit"
    assert (out / "top.bit").read_bytes() == b"BIT"


@pytest.mark.slow
@pytest.mark.synth
def test_vivado_failure_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    bindir = _fake_vivado(tmp_path / "bin", 'echo "ERROR: [Place 30-58] IO placement failed"\n'
                                            "exit 1\n")
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.delenv("VIVADO", raising=False)
    out = tmp_path / "zcu111"
    with pytest.raises(HwsimError, match=r"^vivado failed: ERROR: \[Place 30-58\] IO placement "
                                         r"failed$"):
        build(KERNEL, SMALL, "zcu111", out)
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.synth
def test_default_size_ternary_mvu_builds_for_the_ecp5_default(tmp_path):
    p = KERNEL.params(**{cp.name: cp.default for cp in KERNEL.cli_params})
    r = build(KERNEL, p, "ecp5-ulx3s-85f", tmp_path / "big")
    assert r["fits"] and r["resources"]["bram"]["used"] > 0 and r["fmax_mhz"] > 0
    assert (tmp_path / "big" / "top.bit").stat().st_size > 1_000_000


def _fake_ecp5_flow(payload):
    """Stands in for the tools to test only the bookkeeping around them."""
    def flow(stage, tgt, design, seed):
        (stage / "top.bit").write_bytes(payload)
        return {"resources": {}, "fits": True, "fmax_mhz": None, "bitstream": "top.bit",
                "build_s": {}}
    return flow


def test_rebuild_replaces_report_and_drops_stale_artifacts(tmp_path, monkeypatch):
    out = tmp_path / "b"
    monkeypatch.setattr(fb, "_ecp5_flow", _fake_ecp5_flow(b"one"))
    first = build(KERNEL, SMALL, "ecp5-ulx3s-25f", out)
    # an artifact of an earlier build that the next one does not produce
    (out / "old.bit").write_bytes(b"stale")
    report = json.loads((out / REPORT_JSON).read_text())
    report["artifacts"]["old.bit"] = "0" * 64
    (out / REPORT_JSON).write_text(json.dumps(report))
    monkeypatch.setattr(fb, "_ecp5_flow", _fake_ecp5_flow(b"two"))
    second = build(KERNEL, SMALL, "ecp5-ulx3s-25f", out, force=True)
    assert second["key"] == first["key"] and not second["cached"]
    assert (out / "top.bit").read_bytes() == b"two"
    assert not (out / "old.bit").exists()
    assert "old.bit" not in json.loads((out / REPORT_JSON).read_text())["artifacts"]
    assert [p.name for p in tmp_path.iterdir()] == ["b"]  # no staging folder left


@pytest.mark.synth
def test_terminated_build_ends_its_yosys_and_writes_nothing(tmp_path):
    """SIGTERM to ``hwsim fpga build`` while yosys runs (in its own session, which no Ctrl-C
    or SIGTERM of hwsim reaches): hwsim ends yosys' process group, exits 143 with one line and
    leaves no build folder."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "build"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hwsim.cli", "fpga", "build", "ternary-mvu", "--target", "zcu111",
         "--rows", "64", "--cols", "64", "-o", str(out)], cwd=root, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def tools() -> list[int]:
        """Processes working in the build's staging folder (yosys and its yosys-abc)."""
        found = []
        for p in Path("/proc").iterdir():
            try:
                if p.name.isdigit() and os.readlink(p / "cwd").startswith(str(tmp_path)):
                    found.append(int(p.name))
            except OSError:
                continue
        return found

    deadline = time.monotonic() + 120
    while not tools() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert tools(), "yosys never started"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.strip().splitlines() == ["hwsim: terminated"]
    time.sleep(0.5)
    assert tools() == []
    assert not out.exists() and list(tmp_path.iterdir()) == []
