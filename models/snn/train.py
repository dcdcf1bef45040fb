"""Data set, training, QAT and evaluation of the SNN classifier (the library behind ``hwsim snn``).

The data are event frames: images → :mod:`models.snn.events` → 35 frames of 1 ms. The embedded
default is scikit-learn's digits (1797 images, 10 classes, split 80/20 stratified with a fixed
seed); a Sign Language MNIST CSV works the same way. With ``attention=True`` each sample's frames
are first cropped to the classifier's 48 × 48 around the von Mises saliency peak
(:mod:`models.snn.attention`). Checkpoints are safetensors files with a JSON header of metadata.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hwsim.errors import HwsimError
from hwsim.loading import BOOL, fields_of, integer, maybe, text

from .classifier import STEPS, QuantSnnClassifier, SnnClassifier, SnnShape, check_frames
from .events import DvsConfig, convert_images, load_images, to_frames

__all__ = ["Dataset", "TrainConfig", "accuracy", "load_checkpoint", "make_dataset",
           "save_checkpoint", "train"]


@dataclass
class Dataset:
    """Event frames split into train and test; ``frames`` are (N, T, H, W) uint8 counts."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int
    source: str
    dvs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrainConfig:
    """Training knobs (the paper's neuron model is fixed in :mod:`.classifier`)."""

    epochs: int = 8
    qat_epochs: int = 2
    batch: int = 64
    lr: float = 2e-3
    seed: int = 0


def make_dataset(source: str | Path = "digits", limit: int | None = None, seed: int = 0,
                 dvs: DvsConfig | None = None, attention: bool = False,
                 side: int = 48, progress: bool = False) -> Dataset:
    """Images → events → frames (optionally attention-cropped) → stratified 80/20 split."""
    from sklearn.model_selection import train_test_split

    dvs = dvs or DvsConfig()
    images, labels = load_images(source)
    if limit is not None:
        if limit < 10:
            raise HwsimError(f"--limit must be at least 10 samples, not {limit}")
        images, labels = images[:limit], labels[:limit]
    if len(np.unique(labels)) < 2:
        raise HwsimError("the data set needs at least two classes")
    es = convert_images(images, labels, dvs, seed=seed, progress=progress)
    frames = to_frames(es, STEPS)
    if attention:
        from .attention import crop_frames

        frames = crop_frames(frames, side)
    elif frames.shape[-1] != side:
        frames = _resize_frames(frames, side)
    classes = int(labels.max()) + 1
    counts = np.bincount(labels)
    n_test = -(-len(labels) // 5)
    stratify = counts[counts > 0].min() >= 2 and n_test >= np.count_nonzero(counts)
    strat = labels if stratify else None
    idx_tr, idx_te = train_test_split(np.arange(len(labels)), test_size=0.2, random_state=seed,
                                      stratify=strat)
    return Dataset(frames[idx_tr], labels[idx_tr], frames[idx_te], labels[idx_te], classes,
                   str(source), dvs.to_dict())


def _resize_frames(frames: np.ndarray, side: int) -> np.ndarray:
    """Nearest-neighbour resize of (N, T, H, W) frames to ``side`` × ``side``."""
    h, w = frames.shape[-2:]
    rows = (np.arange(side) * h) // side
    cols = (np.arange(side) * w) // side
    return frames[..., rows, :][..., cols]


def _batches(n: int, batch: int, rng: np.random.Generator | None):
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for i in range(0, n, batch):
        yield order[i:i + batch]


def accuracy(model: nn.Module, frames: np.ndarray, labels: np.ndarray, batch: int = 128) -> float:
    """Fraction of samples whose argmax output spike count is the label."""
    check_frames(frames, model.shape)
    model.eval()
    correct = 0
    with torch.no_grad():
        for idx in _batches(len(labels), batch, None):
            counts = model(torch.as_tensor(frames[idx], dtype=torch.float32))
            correct += int((counts.argmax(1).numpy() == labels[idx]).sum())
    return correct / len(labels)


def _fit(model: nn.Module, ds: Dataset, epochs: int, cfg: TrainConfig, log) -> list[dict]:
    rng = np.random.default_rng(cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    loss_fn = nn.CrossEntropyLoss()
    history = []
    for epoch in range(epochs):
        model.train()
        t0, total, n = time.perf_counter(), 0.0, 0
        for idx in _batches(len(ds.y_train), cfg.batch, rng):
            x = torch.as_tensor(ds.x_train[idx], dtype=torch.float32)
            y = torch.as_tensor(ds.y_train[idx])
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, n = total + loss.item() * len(idx), n + len(idx)
        acc = accuracy(model, ds.x_test, ds.y_test)
        history.append({"epoch": epoch + 1, "loss": total / n, "test_accuracy": acc,
                        "seconds": time.perf_counter() - t0})
        log(f"  epoch {epoch + 1}: loss {total / n:.4f}, test accuracy {acc:.4f}")
    return history


def train(ds: Dataset, cfg: TrainConfig = TrainConfig(), bits: tuple[int, ...] = (8, 4),
          mem_bits: int = 16, log=print) -> dict:
    """Float training, then QAT fine-tuning per weight width from the float weights.

    Returns ``{"float": model, "quant": {bits: model}, "history": {...}}``.
    """
    torch.manual_seed(cfg.seed)
    shape = SnnShape(side=ds.x_train.shape[-1], classes=ds.classes)
    check_frames(ds.x_train, shape)
    model = SnnClassifier(shape)
    log(f"float training ({cfg.epochs} epochs, {len(ds.y_train)} samples)")
    history = {"float": _fit(model, ds, cfg.epochs, cfg, log)}
    quant = {}
    for b in bits:
        q = QuantSnnClassifier.from_float(model, b, mem_bits)
        log(f"QAT int{b} weights, int{mem_bits} membranes ({cfg.qat_epochs} epochs)")
        history[f"int{b}"] = _fit(q, ds, cfg.qat_epochs, cfg, log) if cfg.qat_epochs else []
        quant[b] = q
    return {"float": model, "quant": quant, "history": history}


# ------------------------------------------------------------------------------------------
def save_checkpoint(path: Path, model: nn.Module, meta: dict) -> None:
    """safetensors file with the model's tensors and ``meta`` (JSON) in its header."""
    from safetensors.torch import save

    from hwsim.files import atomic_write_bytes

    kind = "quant" if isinstance(model, QuantSnnClassifier) else "float"
    info = {"kind": kind, "shape": asdict(model.shape), **meta}
    if kind == "quant":
        info.update(weight_bits=model.weight_bits, mem_bits=model.mem_bits)
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(Path(path), save(tensors, metadata={"hwsim_snn": json.dumps(info)}))


#: what an SNN checkpoint's ``hwsim_snn`` header must hold
_SHAPE_RULES = fields_of(SnnShape, complete=True, side=integer(1, 1024),
                         channels=integer(1, 256), kernel=integer(1, 1024), stride=integer(1, 1024),
                         hidden=integer(1, 1 << 16), classes=integer(2, 1000))
_DATA = maybe({"images": maybe(text()), "limit": maybe(integer(1)),
               "canvas": maybe(integer(48, 4096)), "attention": maybe(BOOL),
               "seed": maybe(integer())})
_META = {"kind": text("float", "quant"), "shape": _SHAPE_RULES, "data": _DATA}
_QUANT_META = {**_META, "weight_bits": integer(2, 8), "mem_bits": integer(4, 16)}


def load_checkpoint(path: Path) -> tuple[nn.Module, dict]:
    """Inverse of :func:`save_checkpoint`; one clear error for anything else.

    Checked before the model is used: the header's metadata (kind, shape, bit widths: types and
    ranges), then every tensor against the model (none missing or unknown, shapes, float
    dtypes, finite values); a model over a million weights is built only once the file holds as
    many as its metadata describes."""
    from hwsim.loading import check_meta, check_state, read_safetensors

    path = Path(path)
    tensors, header = read_safetensors(path, "checkpoint", kind="an hwsim SNN checkpoint")
    if "hwsim_snn" not in header:
        raise HwsimError(f"{path} is not an hwsim SNN checkpoint (no hwsim_snn metadata)")
    try:
        info = json.loads(header["hwsim_snn"])
    except (json.JSONDecodeError, RecursionError):
        raise HwsimError(f"{path}: its hwsim_snn metadata is not valid JSON") from None
    where = f"{path} metadata"
    check_meta(info, _META, where)
    check_meta(info, _QUANT_META if info["kind"] == "quant" else _META, where)
    shape = SnnShape(**info["shape"])
    if shape.conv_side < 1:
        raise HwsimError(f"{where}: shape.kernel ({shape.kernel}) is larger than shape.side "
                         f"({shape.side})")
    need = (shape.channels * shape.kernel ** 2 + shape.conv_out * shape.hidden
            + shape.hidden * shape.classes)
    have = sum(int(np.prod(v.shape)) for v in tensors.values())
    if need > max(have, 1 << 20):  # refuse before allocating a model the file cannot fill
        raise HwsimError(f"{path}: its metadata describes {need} weights, the file holds "
                         f"{have}")
    if info["kind"] == "quant":
        model = QuantSnnClassifier(shape, info["weight_bits"], info["mem_bits"])
    else:
        model = SnnClassifier(shape)
    check_state(tensors, model.state_dict(), path)
    model.load_state_dict(tensors)
    model.eval()
    return model, info


# ------------------------------------------------------------------------------------------
# Checks shared by the CLI and the benchmark
def integer_agreement(model: QuantSnnClassifier, frames: np.ndarray) -> dict:
    """Golden integer SNN vs the quantized torch model on ``frames``: how many samples have
    equal output spike counts and equal predictions (the contract says: all of them)."""
    from .classifier import integer_layers, spike_counts_int

    layers = integer_layers(model)
    with torch.no_grad():
        torch_counts = model(torch.as_tensor(frames, dtype=torch.float32)).numpy()
    same_counts = same_pred = 0
    for f, tc in zip(frames, torch_counts, strict=True):
        ic, _ = spike_counts_int(layers, f)
        same_counts += int(np.array_equal(ic, tc.astype(np.int64)))
        same_pred += int(np.argmax(ic) == np.argmax(tc))
    return {"samples": len(frames), "equal_spike_counts": same_counts,
            "equal_predictions": same_pred}


def onnx_agreement(model: QuantSnnClassifier, frames: np.ndarray, path: Path) -> dict:
    """Export the per-step graph to ``path``, run it with onnxruntime, compare with torch."""
    from .export import export_onnx, run_onnx

    export_onnx(model, path)
    with torch.no_grad():
        tc = model(torch.as_tensor(frames, dtype=torch.float32)).numpy()
    oc = run_onnx(path, frames)
    return {"samples": len(frames),
            "equal_spike_counts": int(np.all(oc == tc, axis=1).sum()),
            "equal_predictions": int((oc.argmax(1) == tc.argmax(1)).sum())}
