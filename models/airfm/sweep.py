"""AirFM-DDA in ``hwsim sweep airfm``: prediction NMSE (dB) and cost per (weight, act) bits.

``prepare`` trains (once, cached in ``OUT/float-e<epochs>``) the float window-attention net on
Sionna CDL-B channels at 30 and 60 km/h and stores calibration inputs and a fixed test set
(CDL-B and the held-out CDL-D, same speeds) beside it. A point quantizes every ``nn.Linear`` of
the net (embedding, q/k/v and output projections, MLP, head, skip) with
:func:`hwsim.sweep.ptq.quantize_layers` — per-output-channel symmetric weights, per-tensor
unsigned activations with a zero point calibrated on the training inputs; the attention
products, softmax and norms stay float — as PTQ, or with a short QAT fine-tune from the float
weights (``method="qat"``), and measures the NMSE (dB) over the predicted frames.

Cost: the Linear layers' MACs (forward hooks) plus the attention head's QKᵀ and AV MACs
(:func:`models.airfm.hardware.attention_cost`, from the kernel's formulas), priced with the
target's action energies (:func:`hwsim.flow.common.mac_energy`): one ``int8_mul`` + ``acc_add``
per MAC, weight bits read at the point's width, activation bits at the point's width for the
Linear layers (the attention head's operands are int8).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

WEIGHTS = (2, 3, 4, 5, 6, 8)
ACTS = (4, 5, 6, 8)
TARGETS = ("xczu49dr", "xczu48dr", "xczu28dr", "vitallm")

PROFILES, TEST_PROFILES, SPEEDS = ("CDL-B",), ("CDL-B", "CDL-D"), (30.0, 60.0)


def _cfg():
    from .model import AirFMConfig

    return AirFMConfig()


def prepare(out: Path, options: dict) -> dict:
    import torch
    from safetensors.torch import save_file

    from hwsim.files import atomic_write_text
    from models.channels.timevarying import ChannelSpec

    from .model import AirFMNet
    from .pipeline import build_set, train

    epochs = int(options.get("steps") or 8)
    per = int(options.get("per", 64))
    cfg = _cfg()
    folder = Path(out) / f"float-e{epochs}-n{per}"
    base = ChannelSpec(frames=cfg.past + cfg.future)
    if not (folder / "meta.json").exists():
        torch.set_num_threads(1)
        torch.manual_seed(0)
        folder.mkdir(parents=True, exist_ok=True)
        ds = build_set(base, PROFILES, SPEEDS, per, cfg.past, seed=0)
        net = AirFMNet(cfg)
        train(net, ds, epochs, 3e-3, 0)
        save_file({k: v.contiguous() for k, v in net.state_dict().items()},
                  str(folder / "float.safetensors"))
        test = build_set(base, TEST_PROFILES, SPEEDS, 16, cfg.past, seed=5000)
        np.savez(folder / "data.npz", X=ds.X, Y=ds.Y, calib=ds.X[:32], test_X=test.X,
                 test_H=test.target())
        atomic_write_text(folder / "meta.json", json.dumps({"epochs": epochs, "per": per}))
    return {"checkpoint": str(folder.resolve()), "config": cfg.to_dict(),
            "train_epochs": epochs, "per": per, "train_profiles": list(PROFILES),
            "test_profiles": list(TEST_PROFILES), "speeds": list(SPEEDS), "qat_epochs": 2}


def evaluate(point: dict) -> dict:
    """NMSE (dB) of AirFM-DDA quantized at the point, and its estimated cost."""
    from types import SimpleNamespace

    import torch

    from hwsim.flow.common import mac_energy
    from hwsim.loading import load_weights, read_npz
    from hwsim.sweep.ptq import layer_macs, quantize_layers

    from . import data as D
    from .hardware import attention_cost
    from .model import AirFMConfig, AirFMNet
    from .pipeline import predict, train

    torch.set_num_threads(1)
    torch.manual_seed(0)
    ctx = point["context"]
    w, a = int(point["weights"]), int(point["acts"])
    cfg = AirFMConfig(**ctx["config"])
    folder = Path(ctx["checkpoint"])
    net = load_weights(lambda: AirFMNet(cfg), folder / "float.safetensors", "sweep checkpoint")
    d = read_npz(folder / "data.npz", {k: "float" for k in ("X", "Y", "calib", "test_X")}
                 | {"test_H": "complex"}, "sweep data")
    size = layer_macs(net, lambda n: n(torch.from_numpy(d["test_X"][:1])))
    ref = D.nmse_db_of(d["test_H"], D.to_stf(predict(net, d["test_X"])))
    quantize_layers(net, w, a, lambda n: n(torch.from_numpy(d["calib"])))
    if point["method"] == "qat":
        train(net, SimpleNamespace(X=d["X"], Y=d["Y"]), ctx["qat_epochs"], 6e-4, 1,
              log=lambda _s: None)
    nmse = D.nmse_db_of(d["test_H"], D.to_stf(predict(net, d["test_X"])))
    if not np.isfinite(nmse):
        raise RuntimeError(f"NMSE is not finite at {point}")
    cost = attention_cost(cfg)["window"]["actions"]
    att = cost["qk_mac"] + cost["av_mac"]
    lin = size["macs"]
    e = mac_energy(point["target"], lin + att, weight_bits_read=w * lin,
                   act_bits_read=a * lin + 8 * att)
    return {"nmse_db": float(nmse), "float_nmse_db": float(ref),
            "energy_uj": e["energy_j"] * 1e6, "macs": lin + att,
            "weight_kbits": size["weights"] * w / 1000}
