"""Training-step cost of the SwiftChannel student: Conv3XC branches vs the folded forward.

Usage: ``python scripts/swiftchannel_train_speed.py [--batch 32] [--steps 20] [--json OUT]``

Runs the same Adam training steps (forward, NMSE loss, backward, step) on the default-geometry
student twice, interleaved in one process: once with every :class:`Conv3XC` running its widened
branches (``1×1 → 3×3 → 1×1`` plus the skip, :meth:`Conv3XC.branches`) and once folded into one
3×3 convolution per step (:meth:`Conv3XC.forward`, what ``train`` uses). Both start from the same
weights and see the same batches; the table gives the time per step of each and their ratio (the
machine is shared and noisy: read the ratio, not the seconds), and the largest relative
difference of the weights after the steps (the two are the same maths; float32 reordering only).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from unittest.mock import patch

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.channels import Geometry, pack_real
from models.swiftchannel.model import Conv3XC, SwiftChannelNet
from models.swiftchannel.train import config_for, make_set, nmse_loss


def _steps(net, X, Y, batch, steps) -> float:
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    net.train()
    t0 = time.perf_counter()
    for i in range(steps):
        j = (i * batch) % (len(X) - batch + 1)
        loss = nmse_loss(net(X[j:j + batch]), Y[j:j + batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (time.perf_counter() - t0) / steps


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=20, help="timed steps per variant and round")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (best of)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    a = ap.parse_args(argv)
    geom = Geometry()
    data = make_set(geom, max(4 * a.batch, 128), seed=0)
    rng = np.random.default_rng(0)
    X = torch.from_numpy(data.inputs(rng))
    Y = torch.from_numpy(pack_real(data.H))
    torch.manual_seed(0)
    base = SwiftChannelNet(config_for(geom))
    nets = {"branches": copy.deepcopy(base), "folded": copy.deepcopy(base)}
    best = {k: float("inf") for k in nets}
    for _ in range(a.rounds):
        with patch.object(Conv3XC, "forward", Conv3XC.branches):
            best["branches"] = min(best["branches"], _steps(nets["branches"], X, Y, a.batch, a.steps))
        best["folded"] = min(best["folded"], _steps(nets["folded"], X, Y, a.batch, a.steps))
    drift = max(float((p - q).detach().abs().max() / (p.abs().max() + 1e-12))
                for p, q in zip(nets["branches"].parameters(), nets["folded"].parameters(), strict=True))
    out = {"geometry": geom.__dict__ if hasattr(geom, "__dict__") else str(geom), "batch": a.batch,
           "steps": a.steps * a.rounds, "ms_per_step_branches": 1e3 * best["branches"],
           "ms_per_step_folded": 1e3 * best["folded"], "speedup": best["branches"] / best["folded"],
           "max_rel_weight_diff": drift}
    print(f"{'variant':<10} {'ms/step':>9}")
    print(f"{'branches':<10} {out['ms_per_step_branches']:>9.1f}")
    print(f"{'folded':<10} {out['ms_per_step_folded']:>9.1f}")
    print(f"speed-up folded/branches: {out['speedup']:.2f}x; max relative weight difference after "
          f"{out['steps']} steps: {drift:.2e}")
    if a.json:
        a.json.write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
