"""Data sets, training (float, then QAT) and NMSE evaluation of the SwiftChannel student."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from hwsim.errors import HwsimError
from models.channels import (
    TRAIN_SNRS_DB,
    Geometry,
    generate_channels,
    ls_observation,
    pack_real,
)

from .model import StudentConfig, SwiftChannelNet

__all__ = ["DIVERGED_DB", "LOSSES", "ChannelSet", "balanced_nmse_loss", "config_for", "geo_nmse_loss",
           "make_set", "nmse_loss", "predict", "train"]


def config_for(geom: Geometry, **overrides) -> StudentConfig:
    """The student for ``geom``: PixelShuffle factors = the geometry's compressions."""
    return StudentConfig(rf=geom.freq_comp, rs=geom.space_comp, **overrides)


@dataclass
class ChannelSet:
    """Channels ``H`` (n, F, C) complex and their per-sample SNR (dB)."""

    geom: Geometry
    H: np.ndarray
    snr_db: np.ndarray

    def inputs(self, rng: np.random.Generator) -> np.ndarray:
        """Fresh LS observations ``(n, 2, F/rf, C/rs)`` at each sample's SNR."""
        return pack_real(ls_observation(self.H, self.geom, self.snr_db, rng))


def make_set(geom: Geometry, n: int, seed: int, snrs_db=TRAIN_SNRS_DB,
             speed_kmh=(5.0, 60.0)) -> ChannelSet:
    """``n`` Sionna CDL channels, SNRs cycling through ``snrs_db``."""
    H = generate_channels(geom, n, speed_kmh, seed=seed)
    snr = np.resize(np.asarray(snrs_db, dtype=np.float64), n)
    return ChannelSet(geom, H, snr)


def _sample_nmse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred - target).pow(2).flatten(1).sum(1) / target.pow(2).flatten(1).sum(1)


def nmse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean per-sample NMSE (linear), the paper's training loss.

    On data mixing SNRs the low-SNR samples dominate it (their NMSE is 10–100× larger), so
    the high-SNR samples barely steer the gradient.
    """
    return _sample_nmse(pred, target).mean()


def geo_nmse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Geometric mean of the per-sample NMSE (``10·log10`` of it is the mean NMSE in dB): every
    sample counts by its NMSE in dB, whatever its SNR."""
    return torch.exp(torch.log(_sample_nmse(pred, target)).mean())


def balanced_nmse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``sqrt(nmse_loss · geo_nmse_loss)``: half the gradient (in log terms) from each, between
    the paper's low-SNR-weighted loss and the SNR-blind dB mean."""
    e = _sample_nmse(pred, target)
    return torch.sqrt(e.mean() * torch.exp(torch.log(e).mean()))


def excess_loss(pred: torch.Tensor, ref: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over samples of ``‖pred − ref‖² / ‖ref − target‖²``: how much error ``pred`` adds
    to a reference estimator's own, relative to it.

    For QAT distillation from the float student (``ref``): if the int8 model's deviation from
    the float output is independent of the float error, its NMSE is the float NMSE times
    ``1 + ratio``, so the int8 − float gap in dB is ``10·log10(1 + ratio)`` at every SNR. The
    loss therefore weighs every SNR by the gap it causes there (0.5 dB ↔ ratio 0.122), where
    a plain output distillation ``‖pred − ref‖² / ‖target‖²`` lets the low-SNR samples
    dominate."""
    den = (ref - target).pow(2).flatten(1).sum(1).clamp_min(torch.finfo(ref.dtype).tiny)
    return ((pred - ref).pow(2).flatten(1).sum(1) / den).mean()


#: training losses by name (``hwsim swiftchannel train --qat-loss``)
LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "nmse": nmse_loss, "geo": geo_nmse_loss, "balanced": balanced_nmse_loss}


def predict(net: torch.nn.Module, X: np.ndarray, batch: int = 256) -> np.ndarray:
    """Run ``net`` on real inputs ``(n, 2, r, c)``; returns float32 numpy."""
    net.eval()
    outs = []
    with torch.no_grad():
        for i in range(0, len(X), batch):
            outs.append(net(torch.from_numpy(np.ascontiguousarray(X[i:i + batch]))).numpy())
    return np.concatenate(outs)


def train(net: SwiftChannelNet | torch.nn.Module, data: ChannelSet, epochs: int, lr: float = 2e-3,
          batch: int = 32, seed: int = 0, log: Callable[[str], None] | None = None,
          teacher: torch.nn.Module | None = None, distill: float = 0.0,
          loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nmse_loss,
          excess: bool = False) -> list[float]:
    """Adam on the NMSE loss, new noise every epoch, cosine learning-rate decay.

    ``loss_fn`` is the loss against the true channel (:data:`LOSSES`; the paper's
    :func:`nmse_loss` by default). With a ``teacher`` the loss adds
    ``distill · NMSE(student, teacher)`` (output distillation), or with ``excess``
    ``distill ·`` :func:`excess_loss` ``(student, teacher, channel)`` (the QAT distillation
    from the float student). Returns the mean training loss per epoch (the distillation term
    included).

    Divergence guard: the weights and optimizer state after the best epoch so far are kept
    (from the first epoch on). An epoch whose loss is
    more than :data:`DIVERGED_DB` worse than the best rolls the network and Adam back to that best
    state and halves the learning rate from there on (logged; the history keeps the diverged
    epoch's loss). A run that never diverges is exactly the plain schedule. (Seen without the
    guard: a 120-epoch float run at lr 2e-3 went from −18.4 to −2.9 dB in one epoch and never
    recovered.)
    """
    if epochs < 1:
        raise HwsimError(f"epochs must be at least 1, not {epochs}")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    target_all = pack_real(data.H)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps = epochs * -(-len(target_all) // batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    history = []
    best = (float("inf"), None)  # (loss, (net state, optimizer state)) after the best epoch
    for ep in range(epochs):
        net.train()
        X = data.inputs(rng)
        order = rng.permutation(len(X))
        total, t0 = 0.0, time.perf_counter()
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            x = torch.from_numpy(X[idx])
            y = torch.from_numpy(target_all[idx])
            loss = _loss(net, x, y, teacher, distill, loss_fn, excess)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        history.append(total / len(order))
        if log:
            log(f"epoch {ep + 1}/{epochs}: loss {10 * np.log10(history[-1]):.2f} dB "
                f"({time.perf_counter() - t0:.1f} s)")
        if not history[-1] <= best[0] * 10 ** (DIVERGED_DB / 10):  # also catches NaN
            if best[1] is None:
                raise HwsimError(f"training diverged in its first epoch (loss {history[-1]}): "
                                 f"lower the learning rate ({lr})")
            lr_now = [g["lr"] for g in opt.param_groups]
            net.load_state_dict(best[1][0])
            opt.load_state_dict(best[1][1])
            for g, lr_g in zip(opt.param_groups, lr_now, strict=True):
                g["lr"] = lr_g / 2  # CosineAnnealingLR scales the current lr: halved from here on
            if log:
                log(f"  diverged (best {10 * np.log10(best[0]):.2f} dB): rolled back to the best "
                    f"weights, learning rate halved")
        elif history[-1] < best[0]:
            best = (history[-1], _snapshot(net, opt))
    net.eval()
    return history


#: an epoch this much worse (dB) than the best so far counts as diverged (:func:`train`)
DIVERGED_DB = 3.0


def _snapshot(net: torch.nn.Module, opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    return copy.deepcopy(net.state_dict()), copy.deepcopy(opt.state_dict())


def _loss(net, x, y, teacher, distill, loss_fn, excess=False) -> torch.Tensor:
    out = net(x)
    loss = loss_fn(out, y)
    if teacher is not None and distill > 0:
        with torch.no_grad():
            t_out = teacher(x)
        extra = excess_loss(out, t_out, y) if excess else nmse_loss(out, t_out)
        loss = loss + distill * extra
    return loss

