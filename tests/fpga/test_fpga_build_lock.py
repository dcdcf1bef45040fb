"""One FPGA build per build folder: a second build says the folder is busy."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fpga.build import build
from hwsim.errors import HwsimError
from hwsim.kernels import get_kernel

ROOT = Path(__file__).resolve().parents[2]


def test_second_build_in_a_busy_folder_is_one_line(tmp_path):
    out = tmp_path / "b"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time\nfrom hwsim.files import folder_lock\n"
         f"lock = folder_lock({str(out)!r}, 'FPGA build folder'); lock.__enter__()\n"
         "print('ready', flush=True); time.sleep(120)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "ready"
        kernel = get_kernel("ternary-mvu")
        with pytest.raises(HwsimError, match=rf"^FPGA build folder {out} is busy: another hwsim "
                                             rf"command is working in it \(pid {holder.pid}\)$"):
            build(kernel, kernel.params(lanes=4, rows=8, cols=16), "ecp5-ulx3s-25f", out)
        assert sorted(p.name for p in out.iterdir()) == [".hwsim.lock"]
    finally:
        holder.kill()
        holder.wait()
