"""Where does the int8 SwiftChannel lose accuracy? Post-training quantization ablation of a run.

Usage: ``python scripts/swiftchannel_quant_ablation.py RUN [--test 128]``

Takes a run's float student (plain 3×3 convs) and fake-quantizes it in float arithmetic, without
any QAT: int8 per-output-channel weights (max-abs scale) and/or uint8 activations at every
point the int8 model quantizes (input, head, c1, c2, the sum and the product of each SPAB,
tail, up), with per-tensor ranges calibrated on 128 training channels at 5/10/15/20 dB. Two
activation-scale rules: ``float`` (``(max − min)/255``) and ``pot`` (that rounded up to a power
of two, as the int8 model's Brevitas fixed-point quantizers do). Prints NMSE (dB) on fresh test
channels at 10 and 30 dB, and at 30 dB the NMSE with only one activation point quantized (float
and pot scales).

It models the SPAB as it was before the fused gate (the sum ``x + c2`` quantized to uint8); for
the current int8 model use ``scripts/swiftchannel_int8_ablation.py``, which ablates a trained
run's integer model itself.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwsim.errors import HwsimError
from models.channels import (
    TEST_SPEED_RANGE_KMH,
    generate_channels,
    ls_observation,
    nmse_db,
    pack_real,
    unpack_real,
)
from models.swiftchannel.model import gate, pixel_shuffle
from models.swiftchannel.pipeline import load_run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--test", type=int, default=128)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    try:
        geom, net, _, _ = load_run(args.run)
    except HwsimError as e:  # a missing or corrupt run folder: one line, exit 2
        print(f"swiftchannel_quant_ablation: error: {e}", file=sys.stderr)
        return 2
    H = generate_channels(geom, args.test, TEST_SPEED_RANGE_KMH, seed=1000)
    H_cal = generate_channels(geom, 128, (5.0, 60.0), seed=7)
    rng = np.random.default_rng(1)
    ranges: dict[str, tuple[float, float]] = {}

    def wq(w, on):
        if not on:
            return w
        s = (w.abs().flatten(1).max(1).values / 127).view(-1, 1, 1, 1)
        return torch.round(w / s).clamp(-128, 127) * s

    def aq(name, x, mode):
        if mode == "calib":
            lo, hi = ranges.get(name, (0.0, 0.0))
            ranges[name] = (min(lo, float(x.min())), max(hi, float(x.max())))
            return x
        if mode == "none":
            return x
        lo, hi = ranges[name]
        s = (hi - min(lo, 0.0)) / 255
        if mode == "pot":
            s = 2.0 ** math.ceil(math.log2(s))
        z = round(-min(lo, 0.0) / s)
        return (torch.clamp(torch.round(x / s) + z, 0, 255) - z) * s

    def fwd(x, mode, wquant, only=None):
        def q(n, t):
            return t if (only is not None and n != only) else aq(n, t, mode)

        def c(conv, t):
            return F.conv2d(t, wq(conv.weight, wquant), conv.bias, padding=conv.weight.shape[-1] // 2)

        y = q("head", c(net.head, q("in", x)))
        for i, b in enumerate(net.blocks):
            c1 = q(f"block{i}.c1", F.relu(c(b.c1, y)))
            c2 = q(f"block{i}.c2", c(b.c2, c1))
            y = q(f"block{i}.out", q(f"block{i}.sum", y + c2) * gate(c2))
        y = q("up", c(net.up, q("tail", c(net.tail, y))))
        return pixel_shuffle(y, net.cfg.rf, net.cfg.rs)

    with torch.no_grad():
        for snr in (5.0, 10.0, 15.0, 20.0):
            fwd(torch.from_numpy(pack_real(ls_observation(H_cal, geom, snr, rng))), "calib", False)
        print(f"{'SNR':>4} {'float':>7} {'w8':>7} {'a8 float':>9} {'a8 pot':>7} "
              f"{'w8a8 float':>11} {'w8a8 pot':>9}")
        for snr in (10.0, 30.0):
            X = torch.from_numpy(pack_real(ls_observation(H, geom, snr, rng)))

            def r(*a, X=X, **k):
                return nmse_db(H, unpack_real(fwd(X, *a, **k).numpy()))

            print(f"{snr:4g} {r('none', False):7.2f} {r('none', True):7.2f} "
                  f"{r('float', False):9.2f} {r('pot', False):7.2f} {r('float', True):11.2f} "
                  f"{r('pot', True):9.2f}")
            if snr == 30.0:
                print("30 dB, one activation point quantized, NMSE dB (float scale, pot scale):")
                for n, (lo, hi) in ranges.items():
                    print(f"  {n:<12} range [{lo:7.2f}, {hi:6.2f}]  "
                          f"{r('float', False, only=n):7.2f} {r('pot', False, only=n):7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
