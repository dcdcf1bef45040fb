"""A real DDA window of the AirFM net on the attention-head RTL: == golden, cycles == formula."""

import pytest
import torch

from hwsim.kernels import get_kernel
from hwsim.sim.runner import simulate
from models.airfm.data import split
from models.airfm.hardware import head_params, window_case
from models.airfm.model import AirFMConfig, AirFMNet
from models.channels.timevarying import ChannelSpec, generate


@pytest.mark.cocotb
def test_dda_window_bit_exact_on_icarus(tmp_path):
    cfg = AirFMConfig(antennas=4, subcarriers=8, past=4, future=2, dim=8, layers=1,
                      window_angle=2, window_delay=4)
    H = generate(ChannelSpec(profile="CDL-E", speed_kmh=90.0, antennas=4, frames=6,
                             subcarriers=8), 1, seed=11)
    torch.manual_seed(0)
    net = AirFMNet(cfg)
    p = head_params(cfg, "window", lanes=4, exp_lanes=4)
    case = window_case(net, split(H, cfg.past).X[0], p, window=2)
    kernel = get_kernel("attention-head")
    rep = simulate(kernel, p, [case], tmp_path, sim="icarus")
    assert rep.passed, rep.failures
    c = rep.cases[0]
    assert c["bit_exact"] and c["cycles_match"] and c["queries"] == 8
