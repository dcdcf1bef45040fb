"""hwsim's Hugging Face loader against transformers' own BitNet forward (a measurement).

:func:`transformers_agreement` builds a random transformers ``BitNetForCausalLM`` of a given
shape, quantizes its projections as transformers' ``WeightQuant`` does (scale 1 / mean|W|),
packs them with transformers' ``pack_weights`` into its ``BitLinear`` layers (the microsoft 2B4T
form: 2-bit ``uint8`` + ``weight_scale``), ``save_pretrained``\\s the model, reads the folder
back with transformers' ``from_pretrained`` and with :func:`models.bitnet.hf.load_hf_checkpoint`,
and compares their logits on random tokens. transformers and accelerate are test
dependencies (``requirements.lock``); nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch

from hwsim.errors import HwsimError

from .config import BitNetConfig
from .hf import load_hf_checkpoint

__all__ = ["transformers_agreement"]


def transformers_agreement(cfg: BitNetConfig, folder: Path, *, batch: int = 4, seq: int = 64,
                           seed: int = 0) -> dict:
    """Max |Δlogit| and greedy agreement of hwsim's quantized model vs transformers' quantized
    BitNet on a saved random packed checkpoint (written into ``folder``)."""
    try:
        import accelerate  # noqa: F401  (transformers' BitNet quantizer refuses to load without it)
        from transformers.utils import logging as hf_logging
    except ImportError as e:
        raise HwsimError(f"the transformers comparison needs transformers and accelerate "
                         f"(requirements.lock): {e}") from None
    bars, level = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()  # a bench prints its own table; no bars, no CPU warning
    hf_logging.set_verbosity_error()
    try:
        return _compare(cfg, Path(folder), batch, seq, seed)
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _compare(cfg: BitNetConfig, folder: Path, batch: int, seq: int, seed: int) -> dict:
    from transformers import BitNetConfig as HfConfig
    from transformers import BitNetForCausalLM, BitNetQuantConfig
    from transformers.integrations.bitnet import pack_weights, replace_with_bitnet_linear

    hf_cfg = HfConfig(vocab_size=cfg.vocab, hidden_size=cfg.hidden, intermediate_size=cfg.ffn,
                      num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads,
                      num_key_value_heads=cfg.kv_heads, max_position_embeddings=cfg.max_seq,
                      rms_norm_eps=cfg.norm_eps, tie_word_embeddings=cfg.tie_embeddings,
                      hidden_act=cfg.act, bos_token_id=None, eos_token_id=None,
                      rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta})
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    src = BitNetForCausalLM(hf_cfg).eval()
    with torch.no_grad():  # trained-looking scales: unit-ish norms, embeddings ~1, weights ~0.1
        for name, p in src.named_parameters():
            if name.endswith("norm.weight") or name.endswith("layernorm.weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * (1.0 if "embed" in name else 0.1))
    qc = BitNetQuantConfig(linear_class="bitlinear", quantization_mode="offline")
    weights = {n: m.weight.detach().clone() for n, m in src.named_modules()
               if isinstance(m, torch.nn.Linear) and n != "lm_head"}
    replace_with_bitnet_linear(src, modules_to_not_convert=["lm_head"], quantization_config=qc)
    for name, w in weights.items():
        s = 1.0 / w.abs().mean().clamp(min=1e-5)
        layer = src.get_submodule(name)
        layer.weight = torch.nn.Buffer(pack_weights((w * s).round().clamp(-1, 1)))
        layer.weight_scale = torch.nn.Buffer(s.reshape(1))
        layer.dtype = torch.float32
    src.config.quantization_config = qc
    src.save_pretrained(folder)
    tokens = torch.randint(0, cfg.vocab, (batch, seq), generator=g)
    # transformers' BitNet kernels are torch.compile'd; eager is their reference semantics
    with torch.no_grad(), torch.compiler.set_stance("force_eager"):
        ref = BitNetForCausalLM.from_pretrained(folder).eval()
        want = ref(tokens).logits
    model, info = load_hf_checkpoint(folder)
    with torch.no_grad():
        got = model(tokens)
    return {"hf_logit_max_abs_diff": float((got - want).abs().max()),
            "hf_logit_peak": float(want.abs().max()),
            "hf_greedy_agreement": float((got.argmax(-1) == want.argmax(-1)).float().mean()),
            "hf_positions": int(want.shape[0] * want.shape[1]),
            "hf_packed_projections": info["packed_projections"],
            "hf_rope_theta": model.config.rope_theta}
