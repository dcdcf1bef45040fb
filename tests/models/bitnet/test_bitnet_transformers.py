"""hwsim's Hugging Face loader against transformers itself (pinned in requirements.lock).

Tiny random ``BitNetForCausalLM`` / ``LlamaForCausalLM`` models are written by transformers'
``save_pretrained``, loaded by :func:`models.bitnet.hf.load_hf_checkpoint` and compared logit by
logit with transformers' forward on the same tokens. Packed files are written with
transformers' own ``pack_weights`` into its own ``BitLinear`` / ``AutoBitLinear`` layers and read
back by transformers' ``from_pretrained``, so both sides read the same file.

Tolerances. Float models: both sides compute in float32 with the same operations in another
order (RMSNorm products, SDPA against an explicit softmax, RoPE tables from float64 against
float32 inverse frequencies), two layers deep with sums of at most 128 terms: a few 1e-7 of the
logit peak measured; ``_TOL = 1e-4`` of the peak bounds that with margin, while the θ of the
old fallback (10 000) moves logits by more than 1e-2 of the peak (checked, so the comparison
can fail). Quantized models are discontinuous: a float32-order difference of 1e-6 can move a
per-token int8 activation code across a rounding tie, and that flip then runs through the
model. So each projection is checked on transformers' own input to it (teacher forcing):
ternary codes and int8 activation codes ``==``, output within ``_TOL_PROJ = 1e-5`` of its peak
(float32 scale products and a sum of ≤ 128 terms). The whole model is then held to
``_TOL_Q = 5e-2`` of the logit peak and ≥ 97 % greedy agreement: one flipped code moved the
logits by ~1e-2 of the peak here, a wrong θ by 0.13–0.30 with 84–92 % agreement.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from transformers import BitNetConfig as HfBitNetConfig
from transformers import BitNetForCausalLM, BitNetQuantConfig, LlamaConfig, LlamaForCausalLM
from transformers.integrations.bitnet import AutoBitLinear, BitLinear, pack_weights, unpack_weights

from hwsim.errors import HwsimError
from models.bitnet.config import config_from_hf
from models.bitnet.hf import HF_LAYER_NAMES, load_hf_checkpoint
from models.bitnet.model import BitNetModel
from quant.brevitas_quantizers import per_token_codes

_TOL = 1e-4       # of the logit peak, float models; see the module docstring
_TOL_PROJ = 1e-5  # of one projection's output peak, teacher-forced
_TOL_Q = 5e-2     # of the logit peak, quantized models end to end
_AGREE_Q = 0.97   # greedy agreement, quantized models end to end
_THETA = 500000.0
_SHAPE = {"vocab_size": 96, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
          "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64,
          "bos_token_id": 1, "eos_token_id": 2}


def _randomize(model, seed: int) -> None:
    """Weights of a trained-looking scale (transformers initializes with std 0.02 and unit
    norms, which would leave the logits near zero and the norm weights untested)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or name.endswith("layernorm.weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * (1.0 if "embed" in name else 0.1))


def _bitnet(tie: bool, seed: int = 0) -> BitNetForCausalLM:
    cfg = HfBitNetConfig(**_SHAPE, tie_word_embeddings=tie,
                         rope_parameters={"rope_type": "default", "rope_theta": _THETA})
    torch.manual_seed(seed)
    model = BitNetForCausalLM(cfg).eval()
    _randomize(model, seed)
    return model


def _tokens(n: int = 24, seed: int = 5) -> torch.Tensor:
    return torch.randint(0, _SHAPE["vocab_size"], (2, n), generator=torch.Generator().manual_seed(seed))


def _hf_logits(model, tokens) -> torch.Tensor:
    # transformers' BitNet kernels are torch.compile'd; eager is their reference semantics and
    # spares an inductor build per shape
    with torch.no_grad(), torch.compiler.set_stance("force_eager"):
        return model(tokens).logits


def _hf_load(cls, folder):
    with torch.compiler.set_stance("force_eager"):  # unpacking on load is compiled too
        return cls.from_pretrained(folder).eval()


def _check_close(got: torch.Tensor, want: torch.Tensor) -> float:
    """Max |got − want| ≤ _TOL × peak; returns the relative difference."""
    assert got.shape == want.shape and got.dtype == want.dtype == torch.float32
    diff = (got - want).abs().max().item()
    peak = want.abs().max().item()
    assert diff <= _TOL * peak, f"max |Δlogit| {diff:.3g} > {_TOL} × peak {peak:.3g}"
    return diff / peak


def _check_quantized(ref, model, tokens) -> None:
    """Teacher-forced projections (codes ==, outputs close), then the whole model."""
    inputs = {}
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: inputs.__setitem__(n, i[0].detach()))
             for n, m in ref.named_modules() if isinstance(m, BitLinear | AutoBitLinear)]
    want = _hf_logits(ref, tokens)
    for h in hooks:
        h.remove()
    assert len(inputs) == 7 * _SHAPE["num_hidden_layers"]
    for name, x in inputs.items():
        theirs = ref.get_submodule(name)
        ours = model.get_submodule(_hwsim_name(name))
        with torch.no_grad(), torch.compiler.set_stance("force_eager"):
            y_ref = theirs(x)
            q_ref, _ = BitLinear.activation_quant(None, x)   # transformers' int8 codes
            y = ours(x)
        q, _ = per_token_codes(x)
        assert torch.equal(q.to(torch.int8), q_ref), name
        assert (y - y_ref).abs().max() <= _TOL_PROJ * y_ref.abs().max(), name
    got = _hwsim_logits(model, tokens)
    assert (got - want).abs().max() <= _TOL_Q * want.abs().max()
    assert (got.argmax(-1) == want.argmax(-1)).float().mean() >= _AGREE_Q


def _hwsim_name(hf_name: str) -> str:
    _, _, i, rest = hf_name.split(".", 3)
    return f"layers.{i}.{HF_LAYER_NAMES[rest + '.weight'].rsplit('.', 1)[0]}"


def _hwsim_logits(model, tokens) -> torch.Tensor:
    with torch.no_grad():
        return model(tokens)


def _save_ternary(model: BitNetForCausalLM, folder, linear_class: str) -> dict[str, torch.Tensor]:
    """Quantize every projection the way transformers' ``WeightQuant`` does (scale 1 / mean|W|),
    put it into transformers' own BitLinear (packed, divides by weight_scale) or AutoBitLinear
    offline (packed here, multiplies by weight_scale), and ``save_pretrained``. Returns the codes."""
    from transformers.integrations.bitnet import replace_with_bitnet_linear

    qc = BitNetQuantConfig(linear_class=linear_class, quantization_mode="offline")
    weights = {n: m.weight.detach().clone() for n, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and n != "lm_head"}
    replace_with_bitnet_linear(model, modules_to_not_convert=["lm_head"], quantization_config=qc)
    codes = {}
    for name, w in weights.items():
        s = 1.0 / w.abs().mean().clamp(min=1e-5)
        c = (w * s).round().clamp(-1, 1)
        codes[name] = c.to(torch.int8)
        layer = model.get_submodule(name)
        if linear_class == "bitlinear":
            assert isinstance(layer, BitLinear)
            layer.weight = torch.nn.Buffer(pack_weights(c.clone()))
            layer.weight_scale = torch.nn.Buffer(s.reshape(1))
            layer.dtype = torch.float32
        else:
            assert isinstance(layer, AutoBitLinear)
            layer.weight = torch.nn.Parameter(pack_weights(c.clone()), requires_grad=False)
            layer.weight_scale = torch.nn.Buffer((1.0 / s).reshape(1))
    model.config.quantization_config = qc
    model.save_pretrained(folder)
    return codes


def _hwsim_codes(model, hf_name: str) -> torch.Tensor:
    return model.get_submodule(_hwsim_name(hf_name)).quant_weight().int().to(torch.int8)


def test_float_bitnet_rope_parameters_theta(tmp_path):
    """transformers 5 writes θ only inside rope_parameters; hwsim's float model equals its."""
    src = _bitnet(tie=False)
    src.save_pretrained(tmp_path / "f")
    cfg = json.loads((tmp_path / "f" / "config.json").read_text())
    assert "rope_theta" not in cfg and cfg["rope_parameters"]["rope_theta"] == _THETA
    model, info = load_hf_checkpoint(tmp_path / "f", quantized=False)
    assert model.config.rope_theta == _THETA and info["layout"] == "microsoft"
    tok = _tokens()
    want = _hf_logits(src, tok)
    _check_close(_hwsim_logits(model, tok), want)
    # the comparison sees θ: the same weights at transformers' old fallback θ are far off
    wrong = BitNetModel(dataclasses.replace(model.config, rope_theta=10000.0), quantized=False)
    wrong.load_state_dict(model.state_dict())
    assert (_hwsim_logits(wrong.eval(), tok) - want).abs().max() > 1e-2 * want.abs().max()


@pytest.mark.parametrize("tie", [True, False], ids=["tied", "untied"])
def test_packed_bitlinear_matches_transformers(tmp_path, tie):
    """microsoft 2B4T form: 2-bit packed uint8 + weight_scale, transformers' BitLinear."""
    codes = _save_ternary(_bitnet(tie, seed=1), tmp_path / "q", "bitlinear")
    ref = _hf_load(BitNetForCausalLM, tmp_path / "q")
    assert isinstance(ref.model.layers[0].mlp.down_proj, BitLinear)
    model, info = load_hf_checkpoint(tmp_path / "q")
    assert (info["quantization"], info["packed_projections"]) == ("bitlinear", 14)
    assert (model.head.weight is model.embed.weight) == tie
    for name, c in codes.items():
        assert torch.equal(_hwsim_codes(model, name), c), name
        with torch.compiler.set_stance("force_eager"):  # transformers' own unpacking
            theirs = unpack_weights(ref.get_submodule(name).weight, torch.float32)
        assert torch.equal(theirs.to(torch.int8), c), name
    tok = _tokens()
    _check_quantized(ref, model, tok)
    # the check sees a wrong scale: doubled gains fail the teacher-forced projections
    for m in model.modules():
        if hasattr(m, "weight_gain"):
            m.weight_gain.mul_(2.0)
    with pytest.raises(AssertionError):
        _check_quantized(ref, model, tok)


@pytest.mark.slow
def test_packed_autobitlinear_offline_matches_transformers(tmp_path):
    """AutoBitLinear offline: packed codes, weight_scale multiplies."""
    codes = _save_ternary(_bitnet(False, seed=2), tmp_path / "q", "autobitlinear")
    ref = _hf_load(BitNetForCausalLM, tmp_path / "q")
    assert isinstance(ref.model.layers[0].self_attn.q_proj, AutoBitLinear)
    model, info = load_hf_checkpoint(tmp_path / "q")
    assert info["quantization"] == "autobitlinear-offline"
    for name, c in codes.items():
        assert torch.equal(_hwsim_codes(model, name), c), name
    _check_quantized(ref, model, _tokens())


@pytest.mark.slow
@pytest.mark.parametrize("tie", [True, False], ids=["tied", "untied"])
def test_autobitlinear_online_matches_transformers(tmp_path, tie):
    """Float latent weights quantized at every forward: hwsim's own QAT form, and the float
    model of the same file."""
    src = _bitnet(tie, seed=3)
    src.config.quantization_config = BitNetQuantConfig(linear_class="autobitlinear",
                                                       quantization_mode="online")
    src.save_pretrained(tmp_path / "q")
    ref = _hf_load(BitNetForCausalLM, tmp_path / "q")
    assert isinstance(ref.model.layers[1].mlp.up_proj, AutoBitLinear)
    model, info = load_hf_checkpoint(tmp_path / "q")
    assert info["quantization"] == "autobitlinear-online" and info["packed_projections"] == 0
    tok = _tokens()
    _check_quantized(ref, model, tok)
    flt, _ = load_hf_checkpoint(tmp_path / "q", quantized=False)
    src.config.quantization_config = None
    src.save_pretrained(tmp_path / "f")
    _check_close(_hwsim_logits(flt, tok), _hf_logits(_hf_load(BitNetForCausalLM, tmp_path / "f"), tok))


@pytest.mark.slow
def test_llama_float_and_online(tmp_path):
    """LLaMA form (SiLU, no SubLN, θ from rope_parameters, transformers' LLaMA eps 1e-6)."""
    cfg = LlamaConfig(**_SHAPE, tie_word_embeddings=False,
                      rope_parameters={"rope_type": "default", "rope_theta": _THETA})
    torch.manual_seed(4)
    src = LlamaForCausalLM(cfg).eval()
    _randomize(src, 4)
    src.save_pretrained(tmp_path / "f")
    model, info = load_hf_checkpoint(tmp_path / "f", quantized=False)
    assert info["layout"] == "llama" and not model.config.subln and model.config.act == "silu"
    assert model.config.norm_eps == 1e-6
    tok = _tokens()
    _check_close(_hwsim_logits(model, tok), _hf_logits(src, tok))
    src.config.quantization_config = BitNetQuantConfig(linear_class="autobitlinear",
                                                       quantization_mode="online")
    src.save_pretrained(tmp_path / "q")
    ref = _hf_load(LlamaForCausalLM, tmp_path / "q")
    q, _ = load_hf_checkpoint(tmp_path / "q")
    _check_quantized(ref, q, tok)


# ---- config.json forms, against transformers' own config classes ------------------------------
def _minimal(**extra) -> dict:
    return {k: v for k, v in _SHAPE.items() if not k.endswith("token_id")} | extra


@pytest.mark.parametrize("cls", [HfBitNetConfig, LlamaConfig], ids=["bitnet", "llama"])
def test_defaults_are_transformers_defaults(cls):
    """A config.json that omits θ, eps and the activation reads as transformers reads it."""
    d = _minimal(model_type=cls.model_type)
    hf = cls(**_minimal())
    cfg = config_from_hf(d)
    assert cfg.rope_theta == hf.rope_parameters["rope_theta"]
    assert cfg.norm_eps == hf.rms_norm_eps and cfg.act == hf.hidden_act
    assert cfg.tie_embeddings == hf.tie_word_embeddings


@pytest.mark.parametrize("rope,theta", [
    ({"rope_parameters": {"rope_type": "default", "rope_theta": 500000.0}}, 500000.0),
    ({"rope_theta": 250000.0}, 250000.0),
    ({"rope_scaling": {"type": "default"}, "rope_theta": 123.0}, 123.0),
    ({"rope_parameters": {"rope_theta": 7.0}, "rope_theta": 7.0}, 7.0),
])
def test_rope_forms(rope, theta):
    assert config_from_hf(_minimal(model_type="llama", **rope)).rope_theta == theta


@pytest.mark.parametrize("extra,match", [
    ({"rope_parameters": {"rope_type": "yarn", "rope_theta": 5e5, "factor": 4.0}},
     r"RoPE scaling 'yarn' \(rope_parameters\) is not implemented"),
    ({"rope_scaling": {"type": "linear", "factor": 2.0}, "rope_theta": 5e5},
     r"RoPE scaling 'linear' \(rope_scaling\)"),
    ({"rope_parameters": {"rope_type": "default", "rope_theta": 5e5, "factor": 2.0}},
     r"rope_parameters\.factor is not understood"),
    ({"rope_parameters": {"rope_theta": 5e5}, "rope_theta": 1e4}, "disagrees"),
    ({"rope_parameters": {"rope_theta": 5e5, "partial_rotary_factor": 0.5}},
     "partial_rotary_factor 0.5"),
    ({"rope_parameters": {"full_attention": {"rope_theta": 5e5}}}, "per-layer RoPE"),
    ({"model_type": "mistral"}, "model_type 'mistral' is not supported"),
    ({"hidden_act": "gelu"}, "unsupported hidden_act 'gelu'"),
    ({"attention_bias": True}, "attention_bias true is not supported"),
    ({"mlp_bias": True}, "mlp_bias true"),
    ({"head_dim": 32}, "head_dim 32 is not hidden_size 64 / 4 heads"),
    ({"tie_word_embeddings": 1}, "tie_word_embeddings must be true or false"),
    ({"quantization_config": {"quant_method": "gptq"}}, "quant_method 'gptq'"),
    ({"quantization_config": {"quant_method": "bitnet", "use_rms_norm": True}},
     "use_rms_norm true"),
    ({"quantization_config": {"quant_method": "bitnet", "linear_class": "ternary"}},
     "linear_class 'ternary'"),
    ({"quantization_config": {"quant_method": "bitnet", "modules_to_not_convert": ["q_proj"]}},
     "keeps 'q_proj' in float"),
])
def test_unsupported_configs_are_refused(extra, match):
    d = _minimal(model_type="bitnet") | extra
    with pytest.raises(HwsimError, match=match) as e:
        config_from_hf(d)
    assert "\n" not in str(e.value)


def test_head_dim_equal_to_the_split_is_read():
    assert config_from_hf(_minimal(model_type="llama", head_dim=16)).head_dim == 16


def test_ternary_file_refused_as_float(tmp_path):
    _save_ternary(_bitnet(False, seed=6), tmp_path / "q", "bitlinear")
    with pytest.raises(HwsimError, match="only into the quantized model"):
        load_hf_checkpoint(tmp_path / "q", quantized=False)


def test_bench_comparison(tmp_path, micro):
    """The bench's figure: a saved random packed checkpoint, hwsim vs transformers."""
    from models.bitnet.hf_compare import transformers_agreement

    cfg = dataclasses.replace(micro, rope_theta=_THETA)
    r = transformers_agreement(cfg, tmp_path / "ck", batch=2, seq=16)
    assert r["hf_packed_projections"] == 14 and r["hf_rope_theta"] == _THETA
    assert r["hf_logit_max_abs_diff"] <= _TOL_Q * r["hf_logit_peak"]
    assert r["hf_greedy_agreement"] >= _AGREE_Q and r["hf_positions"] == 32
