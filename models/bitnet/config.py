"""BitNet b1.58 model shapes. Pure Python: the estimator reads these without torch.

Published shapes from the BitNet b1.58 paper (arXiv 2402.17764, Table 1 / 2) and the 2B4T
report; ``tiny`` is hwsim's own CPU-trainable configuration. See ``shared/REFERENCE.md``.
The paper's 700M / 1.3B / 3B models are LLaMA-alike (SwiGLU FFN, so ``act="silu"``); 2B4T
uses SubLN, the squared-ReLU gated FFN, GQA and a tied LM head.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path

from hwsim.errors import HwsimError

__all__ = ["ACTIVATIONS", "CONFIGS", "HF_MODEL_DEFAULTS", "HF_QUANT_FORMS", "MAX_DIM", "BitNetConfig",
           "config_from_hf", "get_config", "hf_quant_form", "hf_rope_theta", "resolve_config"]

#: Largest value of any integer field of a config (hidden, ffn, layers, heads, kv_heads,
#: vocab, max_seq): 2²⁰ is 8× the largest published one (2B4T's 128 256-token vocabulary)
#: and keeps a product of two fields within int64. The model's memory is bounded separately
#: (:meth:`BitNetConfig.check_memory`).
MAX_DIM = 1 << 20

#: Gated-FFN activations: ``relu2`` = relu(x)² (BitNet b1.58 2B4T), ``silu`` (LLaMA, 1bitLLM).
ACTIVATIONS = ("relu2", "silu")


@dataclass(frozen=True)
class BitNetConfig:
    """Shape of a BitNet b1.58 decoder (LLaMA-like, no biases)."""

    name: str
    hidden: int            # model width d
    ffn: int               # FFN inner width (gated: w1, w3: d→ffn; w2: ffn→d)
    layers: int
    heads: int             # query heads
    kv_heads: int          # key/value heads (GQA when < heads)
    vocab: int
    max_seq: int = 2048
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    subln: bool = True     # SubLN before wo and before w2 (2B4T)
    source: str = ""       # where the numbers come from
    notes: dict = field(default_factory=dict)
    act: str = "relu2"     # gated FFN activation: "relu2" (2B4T) or "silu" (1bitLLM, LLaMA)
    tie_embeddings: bool = False  # LM head shares the token embedding (2B4T)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise HwsimError(f"BitNet config name must be a non-empty string, not {self.name!r}")
        for key in ("hidden", "ffn", "layers", "heads", "kv_heads", "vocab", "max_seq"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise HwsimError(f"{self.name}: {key} must be a positive integer, not {v!r}")
            if v > MAX_DIM:
                raise HwsimError(f"{self.name}: {key} {v:,} exceeds the limit {MAX_DIM:,}")
        for key in ("norm_eps", "rope_theta"):
            v = getattr(self, key)
            if (isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)
                    or v <= 0):
                raise HwsimError(f"{self.name}: {key} must be a finite positive number, "
                                 f"not {v!r}")
        for key, kind in (("subln", bool), ("tie_embeddings", bool), ("source", str),
                          ("notes", dict), ("act", str)):
            if not isinstance(getattr(self, key), kind):
                raise HwsimError(f"{self.name}: {key} must be a {kind.__name__}, "
                                 f"not {getattr(self, key)!r}")
        if self.act not in ACTIVATIONS:
            raise HwsimError(f"{self.name}: FFN activation {self.act!r} is not one of "
                             f"{', '.join(ACTIVATIONS)}")
        if self.hidden % self.heads:
            raise HwsimError(f"{self.name}: hidden {self.hidden} not divisible by {self.heads} heads")
        if self.heads % self.kv_heads:
            raise HwsimError(f"{self.name}: {self.heads} heads not divisible by "
                             f"{self.kv_heads} KV heads")
        if (self.hidden // self.heads) % 2:
            raise HwsimError(f"{self.name}: head dim {self.hidden // self.heads} is odd; RoPE "
                             "needs an even head dim")

    def to_dict(self) -> dict:
        """JSON-safe description (checkpoint metadata)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> BitNetConfig:
        """Inverse of :meth:`to_dict`; unknown or missing keys raise one clear error."""
        if not isinstance(d, dict):
            raise HwsimError(f"a BitNet config must be a JSON object, not {type(d).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise HwsimError(f"unknown BitNet config keys: {', '.join(unknown)}")
        try:
            return cls(**d)
        except TypeError as e:
            raise HwsimError(f"incomplete BitNet config: {e}") from None

    @property
    def head_dim(self) -> int:
        """Per-head width; even, since RoPE rotates pairs of channels."""
        return self.hidden // self.heads

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    def projection_shapes(self) -> dict[str, tuple[int, int]]:
        """(rows, cols) = (out_features, in_features) of each ternary projection of one layer."""
        d, f = self.hidden, self.ffn
        return {"wq": (d, d), "wk": (self.kv_dim, d), "wv": (self.kv_dim, d), "wo": (d, d),
                "w1": (f, d), "w3": (f, d), "w2": (d, f)}

    @property
    def ternary_params(self) -> int:
        """Ternary weights in all decoder layers (embeddings and LM head excluded)."""
        return self.layers * sum(r * c for r, c in self.projection_shapes().values())

    @property
    def total_params(self) -> int:
        """Every parameter of the model: decoder layers (norms included), the token embedding
        and an untied LM head, and the final norm (closed form, nothing allocated)."""
        norms = 2 + (2 if self.subln else 0)  # attn/ffn norms, SubLN before wo and w2
        per_layer = norms * self.hidden
        head = 0 if self.tie_embeddings else self.vocab * self.hidden
        return (self.ternary_params + self.layers * per_layer + self.vocab * self.hidden
                + head + self.hidden)

    def check_memory(self) -> None:
        """Raise one line when the float32 model (:attr:`total_params` × 4 bytes) would take
        more than :data:`hwsim.limits.MODEL_MEMORY_FRACTION` of this machine's available
        memory: before any tensor is allocated."""
        from hwsim.limits import check_model_memory

        check_model_memory(f"BitNet config {self.name}", self.total_params, 4)


CONFIGS: dict[str, BitNetConfig] = {c.name: c for c in (
    BitNetConfig("tiny", hidden=128, ffn=352, layers=2, heads=4, kv_heads=2, vocab=256,
                 max_seq=256, source="hwsim: byte-level, trains on CPU in minutes"),
    BitNetConfig("700M", hidden=1536, ffn=4096, layers=24, heads=16, kv_heads=16, vocab=32002,
                 subln=False, act="silu", source="BitNet b1.58, arXiv 2402.17764"),
    BitNetConfig("1.3B", hidden=2048, ffn=5460, layers=24, heads=32, kv_heads=32, vocab=32002,
                 subln=False, act="silu", source="BitNet b1.58, arXiv 2402.17764"),
    BitNetConfig("3B", hidden=3200, ffn=8640, layers=26, heads=32, kv_heads=32, vocab=32002,
                 subln=False, act="silu", source="BitNet b1.58, arXiv 2402.17764 (head dim 100)"),
    BitNetConfig("2B4T", hidden=2560, ffn=6912, layers=30, heads=20, kv_heads=5, vocab=128256,
                 max_seq=4096, rope_theta=5e5, tie_embeddings=True,
                 source="BitNet b1.58 2B4T technical report"),
)}


def get_config(name: str) -> BitNetConfig:
    try:
        return CONFIGS[name]
    except KeyError:
        raise HwsimError(f"unknown BitNet config {name!r}; known: {', '.join(CONFIGS)}") from None


_ACTS = {"relu2": "relu2", "silu": "silu", "swish": "silu"}

#: Hugging Face ``model_type`` → transformers' class defaults for keys a ``config.json`` may
#: omit (``BitNetConfig`` / ``LlamaConfig`` of transformers 5; ``default_theta`` for RoPE θ).
#: A config without ``model_type`` (hand-written, or 1bitLLM-era) gets the ``None`` row.
HF_MODEL_DEFAULTS = {
    "bitnet": {"rope_theta": 500000.0, "rms_norm_eps": 1e-5, "hidden_act": "relu2"},
    "llama": {"rope_theta": 10000.0, "rms_norm_eps": 1e-6, "hidden_act": "silu"},
    None: {"rope_theta": 10000.0, "rms_norm_eps": 1e-5, "hidden_act": "silu"},
}

#: Keys a RoPE dictionary (``rope_parameters`` or legacy ``rope_scaling``) of the default type
#: may hold.
_ROPE_KEYS = {"rope_type", "type", "rope_theta", "partial_rotary_factor"}

#: ``quantization_config`` forms hwsim loads → how a stored ``weight_scale`` enters the output:
#: transformers' packed ``BitLinear`` divides (``y / (s_x · weight_scale)``), ``AutoBitLinear``
#: offline multiplies (``y · weight_scale``), ``AutoBitLinear`` online quantizes float weights
#: by absmean at every forward, as hwsim's ``BitLinear`` does.
HF_QUANT_FORMS = ("bitlinear", "autobitlinear-offline", "autobitlinear-online")


def _hf_int(d: dict, key: str, default=None) -> int:
    v = d.get(key, default) if default is not None else d[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise HwsimError(f"config.json: {key} must be an integer, not {v!r}")
    return v


def _number(v, key: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise HwsimError(f"config.json: {key} must be a number, not {v!r}")
    return float(v)


def _hf_float(d: dict, key: str, default: float) -> float:
    return _number(d.get(key, default), key)


def _false(d: dict, key: str, why: str) -> None:
    v = d.get(key)
    if v is None or v is False:
        return
    if v is True:
        raise HwsimError(f"config.json: {key} true is not supported ({why})")
    raise HwsimError(f"config.json: {key} must be true or false, not {v!r}")


def _model_defaults(d: dict) -> dict:
    model_type = d.get("model_type")
    if not isinstance(model_type, str | None) or model_type not in HF_MODEL_DEFAULTS:
        raise HwsimError(f"config.json: model_type {model_type!r} is not supported "
                         "(bitnet or llama)")
    return HF_MODEL_DEFAULTS[model_type]


def hf_rope_theta(d: dict) -> float:
    """RoPE θ of a Hugging Face ``config.json``, read the way transformers 5 reads it.

    The RoPE dictionary is legacy ``rope_scaling`` when given, else ``rope_parameters``; its
    ``rope_theta`` comes first, then a top-level ``rope_theta``, then the model type's default
    (:data:`HF_MODEL_DEFAULTS`). Only the default (unscaled) RoPE is implemented: any other
    ``rope_type`` / ``type``, a ``partial_rotary_factor`` other than 1, per-layer RoPE
    dictionaries, unknown keys and a top-level θ that disagrees with the dictionary's are
    refused in one line.
    """
    key = "rope_scaling" if d.get("rope_scaling") is not None else "rope_parameters"
    rope = d.get(key)
    if rope is None:
        rope = {}
    if not isinstance(rope, dict):
        raise HwsimError(f"config.json: {key} must be an object, not {rope!r}")
    if any(isinstance(v, dict) for v in rope.values()):
        raise HwsimError(f"config.json: per-layer RoPE parameters in {key} are not supported")
    kind = rope.get("rope_type", rope.get("type", "default"))
    if kind != "default":
        raise HwsimError(f"config.json: RoPE scaling {kind!r} ({key}) is not implemented; "
                         "hwsim has the default RoPE only")
    unknown = sorted(set(rope) - _ROPE_KEYS)
    if unknown:
        raise HwsimError(f"config.json: {key}.{unknown[0]} is not understood for the default RoPE")
    for where, v in ((f"{key}.partial_rotary_factor", rope.get("partial_rotary_factor")),
                     ("partial_rotary_factor", d.get("partial_rotary_factor"))):
        if v is not None and _number(v, where) != 1.0:
            raise HwsimError(f"config.json: {where} {v} is not supported (RoPE on every channel)")
    top = None if d.get("rope_theta") is None else _number(d["rope_theta"], "rope_theta")
    if rope.get("rope_theta") is not None:
        theta = _number(rope["rope_theta"], f"{key}.rope_theta")
        if top is not None and top != theta:
            raise HwsimError(f"config.json: rope_theta {top:g} disagrees with "
                             f"{key}.rope_theta {theta:g}")
        return theta
    return top if top is not None else _model_defaults(d)["rope_theta"]


def hf_quant_form(d: dict) -> str | None:
    """The ``quantization_config`` form of a Hugging Face ``config.json`` (one of
    :data:`HF_QUANT_FORMS`), or None when it has none. Refused in one line: a ``quant_method``
    other than ``bitnet``, an unknown ``linear_class`` or ``quantization_mode``,
    ``use_rms_norm`` true, and ``modules_to_not_convert`` naming anything but ``lm_head``
    (hwsim's LM head is float, every projection ternary)."""
    q = d.get("quantization_config")
    if q is None:
        return None
    if not isinstance(q, dict):
        raise HwsimError(f"config.json: quantization_config must be an object, not {q!r}")
    method = q.get("quant_method")
    if method != "bitnet":
        raise HwsimError(f"config.json: quantization_config.quant_method {method!r} is not "
                         "supported (bitnet only)")
    cls = q.get("linear_class", "bitlinear")
    mode = q.get("quantization_mode", "offline")
    if cls not in ("bitlinear", "autobitlinear"):
        raise HwsimError(f"config.json: quantization_config.linear_class {cls!r} is not "
                         "bitlinear or autobitlinear")
    if mode not in ("offline", "online"):
        raise HwsimError(f"config.json: quantization_config.quantization_mode {mode!r} is not "
                         "offline or online")
    _false(q, "use_rms_norm", "an RMSNorm inside every BitLinear")
    skip = q.get("modules_to_not_convert")
    if skip is not None:
        if not isinstance(skip, list) or any(not isinstance(m, str) for m in skip):
            raise HwsimError("config.json: quantization_config.modules_to_not_convert must be a "
                             f"list of names, not {skip!r}")
        if set(skip) != {"lm_head"}:
            other = sorted(set(skip) - {"lm_head"})
            raise HwsimError("config.json: quantization_config.modules_to_not_convert "
                             + (f"keeps {other[0]!r} in float" if other else
                                "quantizes lm_head") + "; hwsim has ternary projections and a "
                             "float LM head only")
    return "bitlinear" if cls == "bitlinear" else f"autobitlinear-{mode}"


def config_from_hf(d: dict, name: str = "hf", subln: bool = True) -> BitNetConfig:
    """A :class:`BitNetConfig` from a Hugging Face ``config.json`` dictionary.

    Read: ``hidden_size``, ``intermediate_size``, ``num_hidden_layers``,
    ``num_attention_heads``, ``num_key_value_heads`` (absent or null: as many as the query
    heads), ``vocab_size``, ``max_position_embeddings``, RoPE θ (:func:`hf_rope_theta`),
    ``rms_norm_eps``, ``hidden_act`` (relu2, silu/swish), ``tie_word_embeddings``; an absent
    key takes transformers' default for the ``model_type`` (:data:`HF_MODEL_DEFAULTS`).
    Refused in one line: a ``model_type`` other than bitnet or llama, ``head_dim`` other than
    hidden / heads, ``attention_bias`` or ``mlp_bias`` true, an unsupported RoPE or
    ``quantization_config`` (:func:`hf_quant_form`); every field's type and range is checked.
    """
    if not isinstance(d, dict):
        raise HwsimError("config.json must hold a JSON object")
    model_type = d.get("model_type")
    defaults = _model_defaults(d)
    try:
        heads = _hf_int(d, "num_attention_heads")
        hidden = _hf_int(d, "hidden_size")
        act = d.get("hidden_act", defaults["hidden_act"])
        if not isinstance(act, str) or act not in _ACTS:
            raise HwsimError(f"config.json: unsupported hidden_act {act!r} (relu2 or silu)")
        tie = d.get("tie_word_embeddings", False)
        if not isinstance(tie, bool):
            raise HwsimError(f"config.json: tie_word_embeddings must be true or false, "
                             f"not {tie!r}")
        if d.get("head_dim") is not None:
            hd = _hf_int(d, "head_dim")
            if heads > 0 and hd * heads != hidden:
                raise HwsimError(f"config.json: head_dim {hd} is not hidden_size {hidden} / "
                                 f"{heads} heads; hwsim's heads split the hidden width")
        _false(d, "attention_bias", "hwsim's projections have no bias")
        _false(d, "mlp_bias", "hwsim's projections have no bias")
        hf_quant_form(d)
        cfg = BitNetConfig(
            name=name, hidden=hidden, ffn=_hf_int(d, "intermediate_size"),
            layers=_hf_int(d, "num_hidden_layers"), heads=heads,
            kv_heads=_hf_int(d, "num_key_value_heads", heads) if d.get("num_key_value_heads")
            is not None else heads, vocab=_hf_int(d, "vocab_size"),
            max_seq=_hf_int(d, "max_position_embeddings", 2048),
            rope_theta=hf_rope_theta(d),
            norm_eps=_hf_float(d, "rms_norm_eps", defaults["rms_norm_eps"]), subln=subln,
            act=_ACTS[act], tie_embeddings=tie,
            source=f"Hugging Face config ({model_type or 'no model_type'})")
        return cfg
    except KeyError as e:
        raise HwsimError(f"config.json lacks {e.args[0]!r}") from None
    except (TypeError, ValueError) as e:
        if isinstance(e, HwsimError):
            raise
        raise HwsimError(f"config.json has a malformed value ({e})") from None


def resolve_config(arg: str) -> BitNetConfig:
    """A config name (``tiny``, ``3B`` …) or a JSON file: a Hugging Face ``config.json`` or an
    hwsim config dictionary (:meth:`BitNetConfig.to_dict`); refused when the model would not
    fit this machine (:meth:`BitNetConfig.check_memory`)."""
    if arg in CONFIGS:
        cfg = CONFIGS[arg]
    else:
        cfg = _config_file(arg)
    cfg.check_memory()  # before any tensor is allocated
    return cfg


def _config_file(arg: str) -> BitNetConfig:
    path = Path(arg)
    if not path.is_file():
        raise HwsimError(f"unknown BitNet config {arg!r}; known: {', '.join(CONFIGS)}, "
                         "or a config.json file")
    try:
        d = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HwsimError(f"{path} is not valid JSON ({e})") from None
    if isinstance(d, dict) and "hidden_size" in d:
        return config_from_hf(d, path.stem)
    return BitNetConfig.from_dict(d)
