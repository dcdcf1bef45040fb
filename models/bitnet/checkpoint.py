"""hwsim's own BitNet checkpoints: ``model.safetensors`` + ``meta.json`` in one folder.

A checkpoint folder is written through :func:`hwsim.files.staged_dir`, so it is complete or
absent. Reading never unpickles anything: tensors come from safetensors, metadata from JSON,
and every tensor name and shape is checked against the model before loading.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from hwsim.errors import HwsimError
from hwsim.files import staged_dir
from hwsim.loading import BOOL, check_meta, check_state, maybe, read_json, text
from hwsim.loading import read_safetensors as _read

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
    return _read(path, "checkpoint file")[0]


def load_state_checked(model: BitNetModel, state: dict[str, torch.Tensor], where: str) -> None:
    """Load ``state`` into ``model`` after :func:`hwsim.loading.check_state`: no tensor
    missing or unknown, shapes exact, floats only, every value finite."""
    want = model.state_dict()
    if model.config.tie_embeddings:
        want = {k: v for k, v in want.items() if k != "head.weight"}
    # a trained ternary model has gain 1 everywhere; float checkpoints have no gains at all
    state = {**{k: torch.ones(()) for k in want if k.endswith(".weight_gain")}, **state}
    check_state(state, want, where)
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)


_META_RULES = {"format": text("hwsim-bitnet-1"), "config": {}, "quantized": maybe(BOOL)}


def load_checkpoint(folder: Path, quantized: bool | None = None) -> tuple[BitNetModel, dict]:
    """Model and metadata from a checkpoint folder written by :func:`save_checkpoint`.

    ``quantized`` overrides the stored flag (a float checkpoint can seed a ternary model).
    ``meta.json`` is checked (format tag, config, the ``quantized`` flag a bool) before the
    model is built, the tensors by :func:`load_state_checked`.
    """
    folder = Path(folder)
    meta_path = folder / META
    if not meta_path.is_file():
        raise HwsimError(f"{folder} is not a BitNet checkpoint (no {META})")
    meta = read_json(meta_path, "checkpoint description")
    if meta.get("format") != "hwsim-bitnet-1":
        raise HwsimError(f"{meta_path} is not an hwsim BitNet checkpoint description")
    check_meta(meta, _META_RULES, meta_path)
    try:
        cfg = BitNetConfig.from_dict(meta["config"])
    except HwsimError as e:
        raise HwsimError(f"{meta_path}: config: {e}") from None
    q = meta.get("quantized", True) if quantized is None else quantized
    model = BitNetModel(cfg, quantized=bool(q))
    load_state_checked(model, read_safetensors(folder / WEIGHTS), str(folder / WEIGHTS))
    model.eval()
    return model, meta
