"""Hugging Face BitNet checkpoints in the 1bitLLM and microsoft layouts, written by the tests."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from hwsim.errors import HwsimError
from models.bitnet.hf import (
    HF_LAYER_NAMES,
    load_hf_checkpoint,
    pack_ternary_rows,
    unpack_ternary_rows,
)
from models.bitnet.model import BitNetModel
from quant.brevitas_quantizers import per_token_codes, ternary_codes

_OURS_TO_HF = {}
for hf, ours in HF_LAYER_NAMES.items():
    _OURS_TO_HF.setdefault(ours, []).append(hf)


def _hf_config(cfg, **extra):
    return {"hidden_size": cfg.hidden, "intermediate_size": cfg.ffn,
            "num_hidden_layers": cfg.layers, "num_attention_heads": cfg.heads,
            "num_key_value_heads": cfg.kv_heads, "vocab_size": cfg.vocab,
            "max_position_embeddings": cfg.max_seq, "rms_norm_eps": cfg.norm_eps,
            "rope_theta": cfg.rope_theta, "hidden_act": "silu" if cfg.act == "silu" else "relu2",
            "tie_word_embeddings": cfg.tie_embeddings, **extra}


def _hf_state(model, layout):
    """hwsim state dict → HF names (1bitLLM or microsoft sub-norm spelling)."""
    sub = {"1bitLLM": ("inner_attn_ln", "ffn_layernorm"),
           "microsoft": ("attn_sub_norm", "ffn_sub_norm")}[layout]
    out = {}
    for k, v in model.state_dict().items():
        if k.endswith("weight_gain"):
            continue
        if k == "embed.weight":
            out["model.embed_tokens.weight"] = v
        elif k == "norm.weight":
            out["model.norm.weight"] = v
        elif k == "head.weight":
            if not model.config.tie_embeddings:
                out["lm_head.weight"] = v
        else:
            _, i, rest = k.split(".", 2)
            names = [n for n in _OURS_TO_HF[rest] if "sub_norm" not in n and "inner_attn" not in n
                     and "ffn_layernorm" not in n] or [n for n in _OURS_TO_HF[rest]
                                                       if sub[0] in n or sub[1] in n]
            out[f"model.layers.{i}.{names[0]}"] = v
    return {k: v.contiguous() for k, v in out.items()}


def test_pack_known_answer_and_roundtrip():
    # rows r = i·P + j live in bits 2i of packed row j (P = 2 packed rows for 8 rows)
    codes = np.array([[-1], [0], [1], [1], [0], [-1], [1], [0]])
    packed = pack_ternary_rows(codes)
    assert packed.tolist() == [[0 | 2 << 2 | 1 << 4 | 2 << 6], [1 | 2 << 2 | 0 << 4 | 1 << 6]]
    rng = np.random.default_rng(0)
    w = rng.integers(-1, 2, (13, 7))
    assert np.array_equal(unpack_ternary_rows(pack_ternary_rows(w), 13), w)
    with pytest.raises(HwsimError, match="code 3"):
        unpack_ternary_rows(np.full((4, 7), 255, np.uint8), 13)


def test_1bitllm_layout_float16(tmp_path, micro):
    cfg = dataclasses.replace(micro, act="silu")
    torch.manual_seed(0)
    src = BitNetModel(cfg, True).eval()
    with torch.no_grad():  # the file holds fp16: make the source exactly representable
        for p in src.parameters():
            p.copy_(p.half().float())
    folder = tmp_path / "bitnet_b1_58-micro"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(_hf_config(cfg, architectures=["BitnetForCausalLM"])))
    save_file({k: v.half() for k, v in _hf_state(src, "1bitLLM").items()},
              str(folder / "model.safetensors"))
    model, info = load_hf_checkpoint(folder)
    assert info["layout"] == "1bitLLM" and info["packed_projections"] == 0
    assert model.config.act == "silu" and model.config.subln
    tok = torch.randint(0, 256, (1, 16))
    with torch.no_grad():
        assert torch.equal(model(tok), src(tok))


def test_microsoft_packed_layout_sharded(tmp_path, micro):
    cfg = dataclasses.replace(micro, tie_embeddings=True)
    torch.manual_seed(1)
    src = BitNetModel(cfg, True).eval()
    state = _hf_state(src, "microsoft")
    packed_codes, hf_scales = {}, {}
    for k in list(state):
        if k.endswith("_proj.weight"):
            codes, mean_abs = ternary_codes(state[k])
            packed_codes[k] = codes
            state[k] = torch.from_numpy(pack_ternary_rows(codes.numpy()))
            # bitnet.cpp / transformers: y = (x_q·W_q) / (s_x · weight_scale), weight_scale = 1/mean|W|
            hf_scales[k] = 1.0 / mean_abs
            state[k + "_scale"] = torch.tensor([hf_scales[k]], dtype=torch.bfloat16)
    folder = tmp_path / "bitnet-b1.58-micro"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(_hf_config(
        cfg, model_type="bitnet", quantization_config={"quant_method": "bitnet"})))
    names = sorted(state)
    half = len(names) // 2
    shards = {"a.safetensors": names[:half], "b.safetensors": names[half:]}
    for f, keys in shards.items():
        save_file({k: state[k] for k in keys}, str(folder / f))
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {k: f for f, keys in shards.items() for k in keys}}))
    model, info = load_hf_checkpoint(folder)
    assert info == {"layout": "microsoft", "packed_projections": 14, "quantization": "bitlinear",
                    "quantized": True, "config": info["config"]}
    assert model.head.weight is model.embed.weight
    for k, codes in packed_codes.items():
        i, name = k.split(".")[2], k.split(".", 3)[3]
        lin = model.get_submodule(f"layers.{i}.{HF_LAYER_NAMES[name].rsplit('.', 1)[0]}")
        qw = lin.quant_weight()
        assert torch.equal(qw.int().to(torch.int8), codes)            # the file's codes
        xin = torch.randn(5, lin.in_features)
        q, step = per_token_codes(xin)
        ws = float(torch.tensor(hf_scales[k], dtype=torch.bfloat16))
        ref = (q.double() @ codes.double().T) * step.double() / ws   # transformers' formula
        with torch.no_grad():
            got = lin(xin).double()
        # float32 scale products and a sum of ≤ 64 terms: relative 1e-5 of the output peak
        assert (got - ref).abs().max() <= 1e-5 * ref.abs().max()


def _tiny_folder(tmp_path, micro, mutate=None, config=None):
    torch.manual_seed(2)
    src = BitNetModel(micro, True)
    folder = tmp_path / "ck"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config or _hf_config(micro)))
    state = _hf_state(src, "microsoft")
    if mutate:
        mutate(state)
    save_file(state, str(folder / "model.safetensors"))
    return folder


def test_bad_hf_checkpoints(tmp_path, micro):
    f = _tiny_folder(tmp_path, micro, lambda s: s.update({"model.layers.0.mlp.extra.weight":
                                                          torch.zeros(2)}))
    with pytest.raises(HwsimError, match=r"unknown tensor name 'model\.layers\.0\.mlp\.extra\.weight'"):
        load_hf_checkpoint(f)
    f = _tiny_folder(tmp_path, micro, config={**_hf_config(micro), "hidden_size": 30})
    with pytest.raises(HwsimError, match="not divisible by 4 heads"):
        load_hf_checkpoint(f)
    f = _tiny_folder(tmp_path, micro)
    raw = (f / "model.safetensors").read_bytes()
    (f / "model.safetensors").write_bytes(raw[:-100])
    with pytest.raises(HwsimError, match="not a readable safetensors file"):
        load_hf_checkpoint(f)
    f = _tiny_folder(tmp_path, micro, lambda s: s.pop("model.norm.weight"))
    with pytest.raises(HwsimError, match=r"missing tensor 'norm\.weight'"):
        load_hf_checkpoint(f)
    (f / "config.json").unlink()
    with pytest.raises(HwsimError, match=r"no config\.json"):
        load_hf_checkpoint(f)


def test_packed_checkpoint_exports_and_runs_on_golden(tmp_path, micro):
    """A packed checkpoint (weight_gain ≠ 1) through QCDQ export and the golden BitLinear path."""
    from models.bitnet.export import LayerModule, export_bitnet, run_exported
    from models.bitnet.integer import capture_projection

    torch.manual_seed(4)
    src = BitNetModel(micro, True).eval()
    state = _hf_state(src, "microsoft")
    for k in [k for k in state if k.endswith("_proj.weight")]:
        codes, mean_abs = ternary_codes(state[k])
        state[k] = torch.from_numpy(pack_ternary_rows(codes.numpy()))
        state[k + "_scale"] = torch.tensor([1.0 / mean_abs])
    folder = tmp_path / "packed"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(_hf_config(micro)))
    save_file(state, str(folder / "model.safetensors"))
    model, _ = load_hf_checkpoint(folder)
    gains = [float(m.weight_gain) for m in model.modules() if hasattr(m, "weight_gain")]
    assert len(gains) == 14 and any(g != 1.0 for g in gains)
    r = export_bitnet(model, tmp_path / "onnx", seq=12)
    with torch.no_grad():
        want = LayerModule(model, 0)(torch.from_numpy(r["hidden"])).numpy()
    got = run_exported("qcdq", tmp_path / "onnx" / "layer0.qcdq.onnx", {"hidden": r["hidden"]})
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    t = capture_projection(model, np.arange(12)[None], layer=0, proj="wq")
    lin = model.layers[0].attn.wq
    with torch.no_grad():
        y = lin(torch.from_numpy(t.X.astype(np.float32) * t.step[:, None]))
    # the golden path's real output uses the file's scale: acc · step / weight_scale
    ref = t.acc * t.step[:, None] * t.scale
    assert np.abs(y.numpy() - ref).max() <= 1e-5 * np.abs(ref).max()
