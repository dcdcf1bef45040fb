"""The spiking classifier in ``hwsim sweep snn``: test accuracy and cost per (weight bits,
membrane bits).

An SNN's activations are binary spikes; the width that matters beside the weights is the
membrane's, so the sweep's activation axis is the **membrane width** of
:class:`~models.snn.classifier.QuantSnnClassifier` (saturating fixed-point membranes, threshold
code ``round(1/scale)``). ``prepare`` converts the bundled digits to DVS event frames and trains
the float classifier once (cached in ``OUT/float-e<epochs>-n<limit>``). A point builds the QAT
twin at the point's widths from the float weights — PTQ evaluates it as is, ``method="qat"``
fine-tunes it for one epoch — and measures test accuracy.

Cost: the integer SNN's action counts on a few test samples (events really received per layer,
:func:`models.snn.cost.network_counts`; weight reads scale with the weight width, membrane
reads and writes with the membrane width) priced by ``hwsim.estimate``'s action energies of the
target (:func:`models.snn.cost.estimate_energy`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

WEIGHTS = (2, 3, 4, 5, 6, 8)
ACTS = (6, 8, 10, 12, 16)
TARGETS = ("vitallm", "xczu28dr", "xczu48dr", "xczu49dr")
#: the arrays of the cached ``data.npz`` (frames (N, T, H, W), labels (N,), class count)
_DATA = {"x_train": "int", "y_train": "int", "x_test": "int", "y_test": "int", "classes": "int"}


def prepare(out: Path, options: dict) -> dict:
    import torch

    from hwsim.files import atomic_write_text

    from .train import TrainConfig, make_dataset, save_checkpoint, train

    epochs = int(options.get("steps") or 5)
    limit = int(options.get("limit", 500))
    folder = Path(out) / f"float-e{epochs}-n{limit}"
    if not (folder / "meta.json").exists():
        torch.set_num_threads(1)
        folder.mkdir(parents=True, exist_ok=True)
        ds = make_dataset("digits", limit=limit, seed=0)
        res = train(ds, TrainConfig(epochs=epochs, qat_epochs=0, seed=0), ())
        save_checkpoint(folder / "float.safetensors", res["float"], {"data": {"limit": limit}})
        np.savez_compressed(folder / "data.npz", x_train=ds.x_train, y_train=ds.y_train,
                            x_test=ds.x_test, y_test=ds.y_test, classes=ds.classes)
        atomic_write_text(folder / "meta.json", json.dumps({"epochs": epochs, "limit": limit}))
    return {"checkpoint": str(folder.resolve()), "train_epochs": epochs, "limit": limit,
            "qat_epochs": 1, "cost_samples": 4, "lanes": 16}


def evaluate(point: dict) -> dict:
    """Test accuracy of the SNN at the point's weight and membrane widths, and its cost."""
    import torch

    from hwsim.errors import HwsimError
    from hwsim.loading import read_npz

    from .classifier import QuantSnnClassifier, integer_layers
    from .cost import estimate_energy, network_counts
    from .train import Dataset, TrainConfig, _fit, accuracy, load_checkpoint

    torch.set_num_threads(1)
    torch.manual_seed(0)
    ctx = point["context"]
    model, _ = load_checkpoint(Path(ctx["checkpoint"]) / "float.safetensors")
    d = read_npz(Path(ctx["checkpoint"]) / "data.npz", _DATA, "sweep data")
    for part in ("train", "test"):
        x, y = d[f"x_{part}"], d[f"y_{part}"]
        if x.ndim != 4 or y.shape != (len(x),) or not len(x):
            raise HwsimError(f"{ctx['checkpoint']}/data.npz: x_{part} {x.shape} and y_{part} "
                             f"{y.shape} are not N frame stacks and N labels")
    ref = accuracy(model, d["x_test"], d["y_test"])
    q = QuantSnnClassifier.from_float(model, int(point["weights"]), int(point["acts"]))
    if point["method"] == "qat":
        ds = Dataset(d["x_train"], d["y_train"], d["x_test"], d["y_test"], int(d["classes"]),
                     "digits")
        _fit(q, ds, ctx["qat_epochs"], TrainConfig(seed=0), lambda *_: None)
    acc = accuracy(q, d["x_test"], d["y_test"])
    counts = network_counts(integer_layers(q), d["x_test"][:ctx["cost_samples"]], ctx["lanes"])
    e = estimate_energy(counts, point["target"])
    if not e.get("available"):
        raise RuntimeError(e.get("reason", "no estimate"))
    return {"accuracy": float(acc), "float_accuracy": float(ref),
            "energy_nj": e["energy_j"] * 1e9,
            "latency_ms": e["latency_s"] * 1e3, "synaptic_ops": counts["synaptic_ops"]}
