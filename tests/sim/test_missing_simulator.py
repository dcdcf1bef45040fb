"""A missing simulator fails every cocotb test the same way, with one clear message.

A pytest run in a subprocess, where a plugin hides ``iverilog`` and ``verilator`` from
``shutil.which``, collects cocotb tests of three shapes (the registry-wide test on Icarus and on
Verilator, a kernel's own test without a ``sim`` parameter): none runs, none is skipped, each
reports the simulator it lacks.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

HIDE = '''
import shutil

_which = shutil.which


def _no_simulators(cmd, *args, **kwargs):
    return None if cmd in ("iverilog", "verilator") else _which(cmd, *args, **kwargs)


shutil.which = _no_simulators
'''

TESTS = ["tests/sim/test_kernels_cocotb.py::test_kernel_bit_exact_and_cycles[lo-topk-0-icarus]",
         "tests/sim/test_kernels_cocotb.py::test_kernel_bit_exact_and_cycles"
         "[lif-array-0-verilator]",
         "tests/sim/test_ternary_mvu_cocotb.py::test_waves"]


def test_every_cocotb_test_fails_with_the_simulator_it_lacks(tmp_path):
    (tmp_path / "hide_simulators.py").write_text(HIDE)
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT),
                                          os.environ.get("PYTHONPATH", "")])}
    env.pop("PYTEST_XDIST_WORKER", None)
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "hide_simulators", "-p",
                          "no:xdist", "-p", "no:cacheprovider", "-q", "-rA", *TESTS],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "3 errors" in out and "passed" not in out and "skipped" not in out, out
    icarus = "simulator icarus needs `iverilog` on PATH, which is missing (apt-get install iverilog)"
    verilator = ("simulator verilator needs `verilator` on PATH, which is missing "
                 "(run `make setup`)")
    # one section per test, "ERROR at setup of <test>", then the message alone; a test without
    # a `sim` parameter needs both simulators
    sections = out.split("ERROR at setup of ")[1:]
    want = [icarus, verilator, f"{icarus}; {verilator}"]
    assert [sec.splitlines()[1] for sec in sections] == \
        [f"cocotb test cannot run: {w}" for w in want], out
