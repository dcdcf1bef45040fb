"""Hugging Face-format BitNet b1.58 checkpoints → :class:`~models.bitnet.model.BitNetModel`.

A checkpoint folder holds ``config.json`` (read by :func:`~models.bitnet.config.config_from_hf`)
and ``model.safetensors`` (or shards listed in ``model.safetensors.index.json``). Layouts,
told apart by their tensors:

* **microsoft** / transformers ``BitNetForCausalLM`` (``model_type: bitnet``, relu2): SubLN
  norms ``self_attn.attn_sub_norm`` and ``mlp.ffn_sub_norm``.
* **1bitLLM** (``1bitLLM/bitnet_b1_58-*``, LLaMA names, SiLU): SubLN norms
  ``self_attn.inner_attn_ln`` and ``mlp.ffn_layernorm``.
* **llama** (transformers ``LlamaForCausalLM``, SiLU): no SubLN.

Projections are latent float weights, or ternary codes with a ``weight_scale``, as
``quantization_config`` says (transformers' ``integrations/bitnet``):

* ``bitlinear`` (and packed files without ``quantization_config``): **2-bit packed** ``uint8``
  ``weight`` of shape ``(ceil(out/4), in)``; code ``c = w + 1 ∈ {0, 1, 2}``; row ``r = i·P + j``
  of the ternary matrix (``P`` packed rows) sits in bits ``[2i, 2i+2)`` of packed row ``j``.
  The layer computes ``y = (x_q · W_q) / (s_x · weight_scale)``: dequantized ``W_q / weight_scale``.
* ``autobitlinear`` offline: packed or unpacked (−1, 0, +1 as floats) codes; the layer computes
  ``y = dequant(x_q) · W_q · weight_scale``: dequantized ``W_q · weight_scale``.
* ``autobitlinear`` online: float weights, quantized by absmean at every forward.

Stored codes load as that dequantized float weight; since its absmean is not the stored scale,
the projection's ``weight_gain`` restores the stored scale exactly while the ternary codes stay
those of the file (tested against transformers itself). Nothing is downloaded; tensors come
from safetensors only, and every name must be known.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch

from hwsim.errors import HwsimError
from hwsim.files import inside

from .checkpoint import load_state_checked, read_safetensors
from .config import config_from_hf, hf_quant_form
from .model import BitLinear, BitNetModel

__all__ = ["HF_LAYER_NAMES", "config_from_hf", "load_hf_checkpoint", "load_model_folder",
           "pack_ternary_rows", "unpack_ternary_rows"]

#: HF per-layer tensor name → hwsim name (both layouts)
HF_LAYER_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn.wq.weight",
    "self_attn.k_proj.weight": "attn.wk.weight",
    "self_attn.v_proj.weight": "attn.wv.weight",
    "self_attn.o_proj.weight": "attn.wo.weight",
    "self_attn.attn_sub_norm.weight": "attn.sub_norm.weight",   # microsoft
    "self_attn.inner_attn_ln.weight": "attn.sub_norm.weight",   # 1bitLLM
    "mlp.gate_proj.weight": "ffn.w1.weight",
    "mlp.up_proj.weight": "ffn.w3.weight",
    "mlp.down_proj.weight": "ffn.w2.weight",
    "mlp.ffn_sub_norm.weight": "ffn.sub_norm.weight",           # microsoft
    "mlp.ffn_layernorm.weight": "ffn.sub_norm.weight",          # 1bitLLM
}
_TOP_NAMES = {"model.embed_tokens.weight": "embed.weight", "model.norm.weight": "norm.weight",
              "lm_head.weight": "head.weight"}
_LAYER_RE = re.compile(r"^model\.layers\.(\d+)\.(.+)$")


def pack_ternary_rows(codes) -> np.ndarray:
    """Ternary (rows, cols) → HF/bitnet 2-bit packed uint8 (ceil(rows/4), cols)."""
    w = np.asarray(codes, dtype=np.int64)
    if w.ndim != 2 or np.any(np.abs(w) > 1):
        raise HwsimError("packing needs a 2-D matrix of ternary codes")
    P = -(-w.shape[0] // 4)
    packed = np.zeros((P, w.shape[1]), dtype=np.uint8)
    for i in range(4):
        block = (w[i * P:(i + 1) * P] + 1).astype(np.uint8)
        packed[:block.shape[0]] |= block << (2 * i)
    return packed


def unpack_ternary_rows(packed, rows: int, where: str = "packed weight") -> np.ndarray:
    """Inverse of :func:`pack_ternary_rows`: (P, cols) uint8 → (rows, cols) int8 ternary."""
    packed = np.asarray(packed)
    if packed.dtype != np.uint8 or packed.ndim != 2 or packed.shape[0] != -(-rows // 4):
        raise HwsimError(f"{where}: packed shape {packed.shape} ({packed.dtype}) cannot hold "
                         f"{rows} rows")
    codes = np.concatenate([(packed >> (2 * i)) & 3 for i in range(4)], axis=0)[:rows]
    if np.any(codes == 3):
        r, c = (int(v) for v in np.argwhere(codes == 3)[0])
        raise HwsimError(f"{where}: code 3 at ({r}, {c}) is not a ternary weight")
    return codes.astype(np.int8) - 1


def _read_tensors(folder: Path) -> dict[str, torch.Tensor]:
    single, index = folder / "model.safetensors", folder / "model.safetensors.index.json"
    if single.is_file():
        return read_safetensors(single)
    if not index.is_file():
        raise HwsimError(f"{folder} holds neither model.safetensors nor "
                         "model.safetensors.index.json")
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
        files = sorted(set(weight_map.values()))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError,
            AttributeError) as e:
        raise HwsimError(f"{index} is not a safetensors index ({e})") from None
    out: dict[str, torch.Tensor] = {}
    for f in files:
        part = read_safetensors(inside(folder, str(f)))
        out.update(part)
    missing = sorted(set(weight_map) - set(out))
    if missing:
        raise HwsimError(f"{index} lists {missing[0]!r}, which no shard holds")
    return out


def load_hf_checkpoint(folder: Path, quantized: bool = True) -> tuple[BitNetModel, dict]:
    """Load a Hugging Face BitNet b1.58 (or LLaMA) checkpoint folder; returns the model and a
    summary (``layout``, ``packed_projections``, ``quantization``, ``quantized``, ``config``).

    ``quantized=True`` (default) gives the ternary model: latent float weights are quantized by
    absmean at every forward (1bitLLM, transformers' ``AutoBitLinear`` online); stored ternary
    codes keep their codes and their ``weight_scale``. ``quantized=False`` gives the float
    model of a file holding float weights (what transformers runs for a checkpoint without
    ``quantization_config``); a file of ternary codes is refused there.
    """
    folder = Path(folder)
    try:
        hf_cfg = json.loads((folder / "config.json").read_text())
    except FileNotFoundError:
        raise HwsimError(f"{folder} has no config.json") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HwsimError(f"{folder / 'config.json'} is not valid JSON ({e})") from None
    if not isinstance(hf_cfg, dict):
        raise HwsimError(f"{folder / 'config.json'} must hold a JSON object")
    form = hf_quant_form(hf_cfg)
    tensors = _read_tensors(folder)
    subln = any(k.endswith(("attn_sub_norm.weight", "inner_attn_ln.weight")) for k in tensors)
    layout = ("microsoft" if any(k.endswith("attn_sub_norm.weight") for k in tensors)
              else "1bitLLM" if subln else "llama")
    if hf_cfg.get("model_type") == "bitnet" and not subln:
        raise HwsimError(f"{folder}: model_type bitnet without attn_sub_norm / ffn_sub_norm "
                         "tensors (transformers' BitNet always has SubLN)")
    cfg = config_from_hf(hf_cfg, folder.name or "hf", subln)
    codes_in_file = form in ("bitlinear", "autobitlinear-offline") or any(
        v.dtype == torch.uint8 for v in tensors.values())
    if codes_in_file and not quantized:
        raise HwsimError(f"{folder} holds ternary codes (quantization_config {form}); they load "
                         "only into the quantized model")
    model = BitNetModel(cfg, quantized=quantized)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    state: dict[str, torch.Tensor] = {}
    gains: dict[str, float] = {}
    packed = 0
    scales = {k[:-len("_scale")]: v for k, v in tensors.items() if k.endswith(".weight_scale")}
    coded: set[str] = set()
    for k, v in tensors.items():
        if k.endswith(".weight_scale") or k.endswith("rotary_emb.inv_freq"):
            continue
        m = _LAYER_RE.match(k)
        if m and m.group(2) in HF_LAYER_NAMES:
            ours = f"layers.{m.group(1)}.{HF_LAYER_NAMES[m.group(2)]}"
        elif k in _TOP_NAMES:
            ours = _TOP_NAMES[k]
        else:
            raise HwsimError(f"{folder}: unknown tensor name {k!r}")
        if cfg.tie_embeddings and ours == "head.weight":
            continue  # tied: the embedding is the head
        if ours not in shapes:
            raise HwsimError(f"{folder}: tensor {k!r} has no place in a {cfg.layers}-layer model")
        projection = k.endswith("_proj.weight")
        if v.dtype == torch.uint8 or (projection and form in ("bitlinear", "autobitlinear-offline")):
            rows, cols = shapes[ours]
            codes = _stored_codes(folder, k, v, rows, cols, form)
            if k not in scales:
                raise HwsimError(f"{folder}: ternary tensor {k!r} has no weight_scale")
            ws = scales[k].float().reshape(-1)
            if ws.numel() != 1 or not torch.isfinite(ws).all() or float(ws) <= 0:
                raise HwsimError(f"{folder}: weight_scale of {k!r} must be one positive number")
            # transformers' BitLinear divides by weight_scale, AutoBitLinear offline multiplies
            w = codes.float() * ws if form == "autobitlinear-offline" else codes.float() / ws
            nz = codes.abs().float().mean()
            # Brevitas takes mean|W| = mean|codes| · (stored scale) as the scale; the file says
            # the stored scale alone
            gains[ours] = 1.0 / float(nz) if float(nz) > 0 else 1.0
            state[ours] = w
            coded.add(k)
            packed += 1
        else:
            state[ours] = v
    extra = sorted(set(scales) - coded)
    if extra:
        raise HwsimError(f"{folder}: weight_scale given for a float tensor {extra[0]!r}")
    load_state_checked(model, state, str(folder))
    for name, gain in gains.items():
        lin = model.get_submodule(name.rsplit(".", 1)[0])
        assert isinstance(lin, BitLinear)
        lin.weight_gain.fill_(gain)
    model.eval()
    return model, {"layout": layout, "packed_projections": packed,
                   "quantization": form or "none", "quantized": quantized,
                   "config": cfg.to_dict()}


def _stored_codes(folder: Path, k: str, v: torch.Tensor, rows: int, cols: int,
                  form: str | None) -> torch.Tensor:
    """Ternary codes (rows, cols) int8 of a stored projection: 2-bit packed ``uint8`` or, for
    ``AutoBitLinear`` offline, an unpacked float matrix that must hold −1, 0, +1 only."""
    if form == "autobitlinear-online":
        raise HwsimError(f"{folder}: {k!r} holds ternary codes, but quantization_config says "
                         "autobitlinear online (float weights)")
    if v.dtype == torch.uint8:
        if v.ndim != 2 or v.shape[-1] != cols:
            raise HwsimError(f"{folder}: packed tensor {k!r} has {v.shape[-1]} columns, "
                             f"expected {cols}")
        return torch.from_numpy(unpack_ternary_rows(v.numpy(), rows, k))
    if form == "bitlinear":
        raise HwsimError(f"{folder}: {k!r} is {str(v.dtype).removeprefix('torch.')}, but "
                         "quantization_config bitlinear stores 2-bit packed uint8 weights")
    if tuple(v.shape) != (rows, cols):
        raise HwsimError(f"{folder}: tensor {k!r} has shape {tuple(v.shape)}, expected "
                         f"{(rows, cols)}")
    w = v.float()
    bad = ~((w == -1) | (w == 0) | (w == 1))
    if bool(bad.any()):
        r, c = (int(i) for i in torch.nonzero(bad)[0])
        raise HwsimError(f"{folder}: {k!r} value {float(w[r, c])!r} at ({r}, {c}) is not a "
                         "ternary code (autobitlinear offline)")
    return w.to(torch.int8)


def load_model_folder(folder: Path) -> tuple[BitNetModel, dict]:
    """An hwsim checkpoint (``meta.json``) or a Hugging Face checkpoint (``config.json``)."""
    from .checkpoint import META, load_checkpoint

    folder = Path(folder)
    if (folder / META).is_file():
        return load_checkpoint(folder)
    if (folder / "config.json").is_file():
        return load_hf_checkpoint(folder)
    raise HwsimError(f"{folder} is neither an hwsim checkpoint (meta.json) nor a Hugging Face "
                     "checkpoint (config.json)")
