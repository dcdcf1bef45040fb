"""SwiftChannel in ``hwsim sweep swiftchannel``: NMSE (dB) and cost per (weight, activation) bits.

``prepare`` trains (once, cached in ``OUT/float-e<epochs>``) the float student (Conv3XC, then
re-parameterized to plain 3×3 convs) on Sionna CDL-B channels and stores fixed calibration and
test inputs beside it. A point quantizes every conv of that student with
:func:`hwsim.sweep.ptq.quantize_layers` (per-output-channel symmetric weights, per-tensor
unsigned activations with a zero point, ranges from the calibration inputs; the SPAB gate stays
float) — PTQ, or a short QAT fine-tune from the float weights (``method="qat"``) — and measures
NMSE (dB) on the fixed test channels at the sweep SNR.

Cost: MACs of one inference (forward hooks) priced with the target's action energies from
``hwsim.estimate`` (:func:`hwsim.flow.common.mac_energy`): one ``int8_mul`` + ``acc_add`` per
MAC at every width (one DSP48E2 multiply is one action whatever its operand width ≤ 18 bits),
plus the weight bits (the point's width) and activation bits (the point's width) read per MAC.
So both widths change the cost, through data movement only; DSP packing of narrow operands is
not modelled.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

WEIGHTS = (2, 3, 4, 5, 6, 8)
ACTS = (4, 5, 6, 8)
TARGETS = ("xczu49dr", "xczu48dr", "xczu28dr")

#: the sweep's geometry: every BS antenna observed (see docs/swiftchannel.md)
GEOMETRY = {"bs_ant": 4, "subcarriers": 32, "space_comp": 1}


def _geometry(d: dict):
    from models.channels import DEFAULT, Geometry

    return Geometry(**{**DEFAULT.to_dict(), **d})


def prepare(out: Path, options: dict) -> dict:
    """Train the float student the points start from; fixed calibration and test inputs."""
    import torch
    from safetensors.torch import save_file

    from hwsim.files import atomic_write_text
    from models.channels import TEST_SPEED_RANGE_KMH, generate_channels, ls_observation, pack_real

    from .model import SwiftChannelNet, reparameterize
    from .train import config_for, make_set, train

    epochs = int(options.get("steps") or 12)
    n_train = int(options.get("n_train", 1024))
    n_test = int(options.get("n_test", 64))
    folder = Path(out) / f"float-e{epochs}-n{n_train}-t{n_test}"
    geom = _geometry(GEOMETRY)
    cfg = config_for(geom)
    if not (folder / "meta.json").exists():
        torch.set_num_threads(1)
        folder.mkdir(parents=True, exist_ok=True)
        data = make_set(geom, n_train, seed=0)
        net = SwiftChannelNet(cfg)
        train(net, data, epochs, lr=3e-3, seed=0, log=print)
        plain = reparameterize(net)
        save_file({k: v.contiguous() for k, v in plain.state_dict().items()},
                  str(folder / "float.safetensors"))
        calib = data.inputs(np.random.default_rng(1))[:32]
        H = generate_channels(geom, n_test, TEST_SPEED_RANGE_KMH, seed=1000)
        X = pack_real(ls_observation(H, geom, 10.0, np.random.default_rng(1000)))
        np.savez(folder / "data.npz", calib=calib, H=H, X=X)
        atomic_write_text(folder / "meta.json", json.dumps(
            {"epochs": epochs, "n_train": n_train, "geometry": geom.to_dict()}) + "\n")
    import dataclasses

    return {"checkpoint": str(folder.resolve()), "geometry": GEOMETRY,
            "config": dataclasses.asdict(cfg), "train_epochs": epochs, "n_train": n_train,
            "snr_db": 10.0, "test_channels": n_test, "qat_epochs": 2}


def _net(ctx: dict):
    from hwsim.loading import load_weights

    from .model import StudentConfig, SwiftChannelNet

    cfg = StudentConfig(**{**ctx["config"], "conv3xc": False})
    return load_weights(lambda: SwiftChannelNet(cfg),
                        Path(ctx["checkpoint"]) / "float.safetensors", "sweep checkpoint").eval()


def evaluate(point: dict) -> dict:
    """NMSE (dB) of the student quantized at the point, and its estimated cost."""
    import torch

    from hwsim.flow.common import mac_energy
    from hwsim.loading import read_npz
    from hwsim.sweep.ptq import layer_macs, quantize_layers
    from models.channels import nmse_db, unpack_real

    from .train import make_set, predict, train

    torch.set_num_threads(1)
    torch.manual_seed(0)
    ctx = point["context"]
    w, a = int(point["weights"]), int(point["acts"])
    z = read_npz(Path(ctx["checkpoint"]) / "data.npz",
                 {"calib": "float", "H": "complex", "X": "float"}, "sweep data")
    calib, H, X = z["calib"], z["H"], z["X"]
    net = _net(ctx)
    size = layer_macs(net, lambda n: n(torch.from_numpy(X[:1])))
    ref = nmse_db(H, unpack_real(predict(net, X)))
    quantize_layers(net, w, a, lambda n: n(torch.from_numpy(calib)))
    if point["method"] == "qat":
        geom = _geometry(ctx["geometry"])
        train(net, make_set(geom, ctx["n_train"], seed=0), ctx["qat_epochs"], lr=3e-4, seed=1)
        net.eval()
    nmse = nmse_db(H, unpack_real(predict(net, X)))
    if not np.isfinite(nmse):
        raise RuntimeError(f"NMSE is not finite at {point}")
    e = mac_energy(point["target"], size["macs"], weight_bits_read=w * size["macs"],
                   act_bits_read=a * size["macs"])
    return {"nmse_db": float(nmse), "float_nmse_db": float(ref),
            "energy_uj": e["energy_j"] * 1e6, "macs": size["macs"],
            "weight_kbits": size["weights"] * w / 1000}
