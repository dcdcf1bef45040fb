"""Training-step cost of the SwiftChannel student: Conv3XC branches against the folded forward.

Runs the same Adam training steps (forward, NMSE loss, backward, step) on one student twice,
interleaved in one process: once with every :class:`~models.swiftchannel.model.Conv3XC` running
its widened branches (``1×1 → 3×3 → 1×1`` plus the skip, ``Conv3XC.branches``) and once folded
into one 3×3 convolution per step (``Conv3XC.forward``, what training uses). Both start from the
same weights and see the same batches. Reported: the best time per step of each over
``--rounds`` interleaved rounds, their ratio (the machine may be shared and noisy: read the
ratio, not the milliseconds), and the largest relative difference of the weights after the
steps (the two are the same maths; float32 reordering only).
"""

from __future__ import annotations

import copy
import time

from hwsim.errors import check_ints

DESCRIPTION = ("SwiftChannel training step: Conv3XC branches vs the folded 3×3 forward "
               "(ms per step, speed-up, weight drift)")


def add_arguments(p) -> None:
    p.add_argument("--batch", type=int, default=32, help="batch size")
    p.add_argument("--steps", type=int, default=20,
                   help="timed steps per variant and round")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (best of)")
    p.add_argument("--bs-ant", type=int, default=None, help="override: BS antennas")
    p.add_argument("--subcarriers", type=int, default=None, help="override: subcarriers")
    p.add_argument("--space-comp", type=int, default=None,
                   help="override: pilot spacing across BS antennas")


def _steps(net, X, Y, batch: int, steps: int) -> float:
    """Seconds per Adam step of ``net`` on consecutive batches of ``X`` → ``Y``."""
    import torch

    from models.swiftchannel.train import nmse_loss

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


def run(args) -> dict:
    from unittest.mock import patch

    import numpy as np
    import torch

    from models.channels import Geometry, pack_real
    from models.swiftchannel.model import Conv3XC, SwiftChannelNet
    from models.swiftchannel.train import config_for, make_set

    check_ints(args, "bench", ("batch", "steps", "rounds"))
    torch.set_num_threads(1)
    over = {k: getattr(args, k) for k in ("bs_ant", "subcarriers", "space_comp")
            if getattr(args, k) is not None}
    geom = Geometry(**{**Geometry().to_dict(), **over})
    data = make_set(geom, max(4 * args.batch, 128), seed=0)
    X = torch.from_numpy(data.inputs(np.random.default_rng(0)))
    Y = torch.from_numpy(pack_real(data.H))
    torch.manual_seed(0)
    base = SwiftChannelNet(config_for(geom))
    nets = {"branches": copy.deepcopy(base), "folded": copy.deepcopy(base)}
    best = {k: float("inf") for k in nets}
    for _ in range(args.rounds):
        with patch.object(Conv3XC, "forward", Conv3XC.branches):
            best["branches"] = min(best["branches"],
                                   _steps(nets["branches"], X, Y, args.batch, args.steps))
        best["folded"] = min(best["folded"], _steps(nets["folded"], X, Y, args.batch, args.steps))
    drift = max(float((p - q).detach().abs().max() / (p.detach().abs().max() + 1e-12))
                for p, q in zip(nets["branches"].parameters(), nets["folded"].parameters(),
                                strict=True))
    return {"geometry": geom.to_dict(), "batch": args.batch, "steps": args.steps * args.rounds,
            "ms_per_step_branches": 1e3 * best["branches"],
            "ms_per_step_folded": 1e3 * best["folded"],
            "speedup": best["branches"] / best["folded"], "max_rel_weight_diff": drift}


def table(r: dict) -> str:
    return "\n".join([
        f"{'variant':<10} {'ms/step':>9}",
        f"{'branches':<10} {r['ms_per_step_branches']:>9.1f}",
        f"{'folded':<10} {r['ms_per_step_folded']:>9.1f}",
        f"speed-up folded/branches: {r['speedup']:.2f}x; max relative weight difference after "
        f"{r['steps']} steps: {r['max_rel_weight_diff']:.2e}"])
