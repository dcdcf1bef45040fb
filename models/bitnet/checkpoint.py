"""hwsim's own BitNet checkpoints: ``model.safetensors`` + ``meta.json`` in one folder.

A checkpoint folder is written through :func:`hwsim.files.staged_dir`, so it is complete or
absent. Reading never unpickles anything: tensors come from safetensors, metadata from JSON,
and every tensor name and shape is checked against the model before loading.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from hwsim.errors import HwsimError
from hwsim.files import staged_dir

from .config import BitNetConfig
from .model import BitNetModel

__all__ = ["load_checkpoint", "load_state_checked", "read_safetensors", "save_checkpoint"]

WEIGHTS, META = "model.safetensors", "meta.json"


def save_checkpoint(model: BitNetModel, folder: Path, meta: dict | None = None) -> Path:
    """Write ``model`` (and ``meta``) into ``folder`` atomically; returns the folder."""
    folder = Path(folder)
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    if model.config.tie_embeddings:
        state.pop("head.weight", None)  # shared with embed.weight; safetensors refuses aliases
    info = {"format": "hwsim-bitnet-1", "config": model.config.to_dict(),
            "quantized": model.quantized, **(meta or {})}
    with staged_dir(folder) as stage:
        save_file(state, str(stage / WEIGHTS))
        (stage / META).write_text(json.dumps(info, indent=1, default=str))
    return folder


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file; a corrupt or truncated file raises one clear line."""
    path = Path(path)
    if not path.is_file():
        raise HwsimError(f"checkpoint file {path} does not exist")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise HwsimError(f"{path} is not a readable safetensors file ({first})") from None


def load_state_checked(model: BitNetModel, state: dict[str, torch.Tensor], where: str) -> None:
    """Load ``state`` into ``model`` after checking names and shapes exactly."""
    want = model.state_dict()
    if model.config.tie_embeddings:
        want = {k: v for k, v in want.items() if k != "head.weight"}
    # a trained ternary model has gain 1 everywhere; float checkpoints have no gains at all
    state = {**{k: torch.ones(()) for k in want if k.endswith(".weight_gain")}, **state}
    unknown = sorted(set(state) - set(want))
    if unknown:
        raise HwsimError(f"{where}: unknown tensor name {unknown[0]!r}"
                         + (f" (+{len(unknown) - 1} more)" if len(unknown) > 1 else ""))
    missing = sorted(set(want) - set(state))
    if missing:
        raise HwsimError(f"{where}: missing tensor {missing[0]!r}"
                         + (f" (+{len(missing) - 1} more)" if len(missing) > 1 else ""))
    for k, v in state.items():
        if tuple(v.shape) != tuple(want[k].shape):
            raise HwsimError(f"{where}: tensor {k!r} has shape {tuple(v.shape)}, the model "
                             f"expects {tuple(want[k].shape)}")
        if not v.is_floating_point():
            raise HwsimError(f"{where}: tensor {k!r} has dtype {v.dtype}, expected floats")
        if not torch.isfinite(v).all():
            raise HwsimError(f"{where}: tensor {k!r} holds NaN or infinity")
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)


def load_checkpoint(folder: Path, quantized: bool | None = None) -> tuple[BitNetModel, dict]:
    """Model and metadata from a checkpoint folder written by :func:`save_checkpoint`.

    ``quantized`` overrides the stored flag (a float checkpoint can seed a ternary model).
    """
    folder = Path(folder)
    meta_path = folder / META
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise HwsimError(f"{folder} is not a BitNet checkpoint (no {META})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HwsimError(f"{meta_path} is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != "hwsim-bitnet-1":
        raise HwsimError(f"{meta_path} is not an hwsim BitNet checkpoint description")
    cfg = BitNetConfig.from_dict(meta.get("config"))
    q = bool(meta.get("quantized", True)) if quantized is None else quantized
    model = BitNetModel(cfg, quantized=q)
    load_state_checked(model, read_safetensors(folder / WEIGHTS), str(folder / WEIGHTS))
    model.eval()
    return model, meta
