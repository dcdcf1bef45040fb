"""The composed SwiftChannel pipeline at full size in Amaranth's simulator, on a real channel.

Usage: ``python scripts/swiftchannel_pipeline_check.py RUN [--taps 3] [--snr 10]``

Takes a run's int8 student, one Sionna CDL channel's LS estimate at ``--snr`` (the benchmark's
channel, seed 4242), quantized to input codes, streams it through
:class:`rtl.swiftchannel.pipeline.SwiftChannelPipeline` and prints whether every output code
``==`` the golden and the measured cycles against the formula. Exit 1 if either differs.
(Minutes: elaborating the full-size design is slow.)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwsim.errors import HwsimError
from hwsim.golden.common.lanes import pack_lanes, unpack_lanes
from hwsim.golden.swiftchannel import network as sc
from hwsim.golden.swiftchannel import pipeline as ps
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from models.channels import generate_channels, ls_observation, pack_real
from models.swiftchannel.pipeline import load_run
from rtl.swiftchannel.pipeline import SwiftChannelPipeline


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--taps", type=int, default=3, choices=(1, 3, 9))
    ap.add_argument("--snr", type=float, default=10.0)
    args = ap.parse_args(argv)
    try:
        geom, _, im, _ = load_run(args.run)
    except HwsimError as e:  # a missing or corrupt run folder: one line, exit 2
        print(f"swiftchannel_pipeline_check: error: {e}", file=sys.stderr)
        return 2
    H = generate_channels(geom, 1, seed=4242)
    X = pack_real(ls_observation(H, geom, args.snr, np.random.default_rng(0)))
    xq = sc.quantize_input(X, im)[0]
    p = ps.PipelineParams.from_model(im, *xq.shape[1:], taps=args.taps)
    t0 = time.perf_counter()
    dut = SwiftChannelPipeline(p)
    src = Source(dut.x, [pack_lanes(xq[:, r, c], 8) for r in range(p.height) for c in range(p.width)])
    snk = Sink(dut.y, p.pixels)
    run_streams(dut, [src], [snk])
    got = np.array([unpack_lanes(v, 8, p.out_ch, signed=False) for v in snk.values])
    cycles = snk.cycles[-1] - src.cycles[0] + 1
    exact = bool(np.array_equal(got, ps.pipeline(xq, p)))
    print(f"input {xq.shape[1]}x{xq.shape[2]}, taps {args.taps}: bit-exact {exact}, cycles {cycles}, "
          f"formula {ps.frame_cycles(p)}, wall {time.perf_counter() - t0:.0f} s")
    return 0 if exact and cycles == ps.frame_cycles(p) else 1


if __name__ == "__main__":
    raise SystemExit(main())
