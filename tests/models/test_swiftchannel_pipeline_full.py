"""The composed SwiftChannel pipeline at full size in Amaranth's simulator, on a real channel.

A run at the default geometry (16 × 2 antennas, 96 subcarriers) is trained briefly (its weights
do not matter for bit-exactness, only its shapes, zero points and multipliers); one Sionna CDL
channel's LS estimate at 10 dB SNR (seed 4242, the benchmark's channel), quantized to input
codes, streams through :class:`rtl.swiftchannel.pipeline.SwiftChannelPipeline`: every output
code ``==`` the golden pipeline and the measured cycles ``==`` the formula. Slow: elaborating
and simulating the full-size design takes minutes.
"""

import numpy as np
import pytest

from hwsim.golden.common.lanes import pack_lanes, unpack_lanes
from hwsim.golden.swiftchannel import network as sc
from hwsim.golden.swiftchannel import pipeline as ps
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from models.channels import DEFAULT, generate_channels, ls_observation, pack_real
from models.swiftchannel.pipeline import load_run, train_run
from rtl.swiftchannel.pipeline import SwiftChannelPipeline


@pytest.mark.slow
def test_full_size_pipeline_equals_golden_and_formula(tmp_path):
    import torch

    torch.set_num_threads(1)
    run = tmp_path / "run"
    train_run(run, DEFAULT, n_train=48, epochs=1, qat_epochs=1, log=lambda _s: None)
    geom, _, im, _ = load_run(run)
    H = generate_channels(geom, 1, seed=4242)
    X = pack_real(ls_observation(H, geom, 10.0, np.random.default_rng(0)))
    xq = sc.quantize_input(X, im)[0]
    p = ps.PipelineParams.from_model(im, *xq.shape[1:], taps=3)
    dut = SwiftChannelPipeline(p)
    src = Source(dut.x, [pack_lanes(xq[:, r, c], 8) for r in range(p.height)
                         for c in range(p.width)])
    snk = Sink(dut.y, p.pixels)
    run_streams(dut, [src], [snk])
    got = np.array([unpack_lanes(v, 8, p.out_ch, signed=False) for v in snk.values])
    assert np.array_equal(got, ps.pipeline(xq, p))
    assert snk.cycles[-1] - src.cycles[0] + 1 == ps.frame_cycles(p)
