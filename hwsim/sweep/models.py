"""Models a sweep can carry: their evaluator, metric, legal bit widths and targets.

An evaluator (``"module:function"``) takes a point ``{"weights", "acts", "method", "target",
"context"}`` and returns the model's own metric on its validation data plus the estimator's
cost of that point on the target. ``prepare`` (optional) runs once per sweep in the main process
— e.g. train the float checkpoint the points start from — and returns the ``context`` dict
every point receives (it is part of each point's key, so a new checkpoint means new points).
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.errors import HwsimError

__all__ = ["SWEEP_MODELS", "SweepModel", "get_sweep_model"]


@dataclass(frozen=True)
class SweepModel:
    name: str
    summary: str
    evaluator: str
    metric: str                    # result key of the model's metric
    higher_is_better: bool
    cost: str                      # result key of the cost the Pareto front uses
    weights: tuple[int, ...]       # legal weight widths
    acts: tuple[int, ...]          # legal activation widths
    targets: tuple[str, ...]
    default_weights: tuple[int, ...]
    default_acts: tuple[int, ...]
    prepare: str | None = None

    def check(self, weights, acts, target: str, method: str) -> None:
        for kind, asked, legal in (("weight", weights, self.weights), ("activation", acts,
                                                                       self.acts)):
            bad = [b for b in asked if b not in legal]
            if bad:
                raise HwsimError(f"{self.name} cannot run {bad[0]}-bit {kind}s; "
                                 f"supported: {', '.join(map(str, legal))}")
        if target not in self.targets:
            raise HwsimError(f"{self.name} does not map to target {target!r}; "
                             f"targets: {', '.join(self.targets)}")
        if method not in ("ptq", "qat"):
            raise HwsimError(f"unknown method {method!r}; use ptq or qat")


#: one entry per model; each evaluator lives with its model
SWEEP_MODELS: dict[str, SweepModel] = {m.name: m for m in (
    SweepModel("bitnet", "BitNet-tiny on the CPython-stdlib corpus: validation perplexity",
               evaluator="models.bitnet.sweep:evaluate", prepare="models.bitnet.sweep:prepare",
               metric="ppl", higher_is_better=False, cost="energy_per_token_mj",
               weights=(2, 3, 4, 5, 6, 8), acts=(4, 5, 6, 8),
               targets=("vitallm", "xczu28dr", "xczu48dr", "xczu49dr"),
               default_weights=(2, 3, 4, 8), default_acts=(4, 6, 8)),
    SweepModel("swiftchannel", "SwiftChannel student on Sionna CDL-B: NMSE (dB) at 10 dB SNR",
               evaluator="models.swiftchannel.sweep:evaluate",
               prepare="models.swiftchannel.sweep:prepare",
               metric="nmse_db", higher_is_better=False, cost="energy_uj",
               weights=(2, 3, 4, 5, 6, 8), acts=(4, 5, 6, 8),
               targets=("xczu49dr", "xczu48dr", "xczu28dr"),
               default_weights=(2, 3, 4, 8), default_acts=(4, 6, 8)),
    SweepModel("airfm", "AirFM-DDA channel prediction (CDL-B, held-out CDL-D): NMSE (dB)",
               evaluator="models.airfm.sweep:evaluate", prepare="models.airfm.sweep:prepare",
               metric="nmse_db", higher_is_better=False, cost="energy_uj",
               weights=(2, 3, 4, 5, 6, 8), acts=(4, 5, 6, 8),
               targets=("xczu49dr", "xczu48dr", "xczu28dr", "vitallm"),
               default_weights=(2, 3, 4, 8), default_acts=(4, 6, 8)),
    SweepModel("snn", "spiking classifier on DVS digits: test accuracy (acts = membrane bits)",
               evaluator="models.snn.sweep:evaluate", prepare="models.snn.sweep:prepare",
               metric="accuracy", higher_is_better=True, cost="energy_nj",
               weights=(2, 3, 4, 5, 6, 8), acts=(6, 8, 10, 12, 16),
               targets=("vitallm", "xczu28dr", "xczu48dr", "xczu49dr"),
               default_weights=(2, 4, 8), default_acts=(8, 12, 16)),
)}


def get_sweep_model(name: str) -> SweepModel:
    try:
        return SWEEP_MODELS[name]
    except KeyError:
        known = ", ".join(SWEEP_MODELS) or "none yet"
        raise HwsimError(f"unknown sweep model {name!r}; known: {known}") from None
