import dataclasses

import numpy as np
import pytest
import torch

from hwsim.errors import HwsimError
from models.bitnet.config import CONFIGS, BitNetConfig, get_config
from models.bitnet.model import BitLinear, BitNetModel
from quant.brevitas_quantizers import per_token_codes, ternary_codes


@pytest.mark.parametrize("quantized", [False, True])
def test_shapes_and_causality(micro, quantized):
    torch.manual_seed(0)
    m = BitNetModel(micro, quantized).eval()
    tok = torch.randint(0, 256, (2, 20))
    with torch.no_grad():
        a = m(tok)
        tok2 = tok.clone()
        tok2[:, 12:] = (tok2[:, 12:] + 7) % 256
        b = m(tok2)
    assert a.shape == (2, 20, 256)
    # positions before the change see exactly the same computation: bit-identical logits
    assert torch.equal(a[:, :12], b[:, :12])
    assert not torch.equal(a[:, 12:], b[:, 12:])


def test_bitlinear_is_integer_matmul_times_scales(micro):
    torch.manual_seed(0)
    lin = BitLinear(32, 48)
    x = torch.randn(5, 32)
    q, step = per_token_codes(x)
    codes, scale = ternary_codes(lin.weight)
    acc = q.double() @ codes.double().T                       # exact integers
    ref = acc * step.double() * scale
    with torch.no_grad():
        y = lin(x).double()
    # float32 products of ≤ 32 terms of size ≤ 128·step·scale: relative error ≤ 32·2⁻²⁴
    assert torch.allclose(y, ref, rtol=0, atol=float(ref.abs().max()) * 32 * 2**-24 * 4)


def test_gqa_and_subln_layout(micro):
    m = BitNetModel(micro, True)
    a = m.layers[0].attn
    assert a.wk.weight.shape == (micro.kv_dim, micro.hidden) == (16, 32)
    assert a.sub_norm is not None and m.layers[0].ffn.sub_norm is not None
    no_sub = BitNetModel(dataclasses.replace(micro, subln=False, act="silu"), True)
    assert no_sub.layers[0].attn.sub_norm is None
    names = set(m.state_dict())
    assert "layers.0.attn.wq.weight" in names and not any("bias" in n for n in names)


def test_tied_head():
    cfg = dataclasses.replace(get_config("tiny"), tie_embeddings=True, name="tied")
    m = BitNetModel(cfg, True)
    assert m.head.weight is m.embed.weight


@pytest.mark.parametrize("bad, match", [
    (dict(hidden=130), "not divisible by 4 heads"),
    (dict(kv_heads=3), "not divisible by 3 KV heads"),
    (dict(hidden=132, heads=12, kv_heads=4), "odd"),
    (dict(act="gelu"), "activation"),
    (dict(layers=0), "layers must be a positive integer"),
])
def test_bad_configs(bad, match):
    with pytest.raises(HwsimError, match=match):
        dataclasses.replace(get_config("tiny"), **bad)


def test_published_shapes_and_roundtrip():
    assert CONFIGS["3B"].head_dim == 100 and CONFIGS["2B4T"].kv_heads == 5
    for cfg in CONFIGS.values():
        assert BitNetConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(HwsimError, match="unknown BitNet config keys: bogus"):
        BitNetConfig.from_dict({**CONFIGS["tiny"].to_dict(), "bogus": 1})
    with pytest.raises(HwsimError, match="unknown BitNet config"):
        get_config("7B")


def test_training_lowers_validation_perplexity(trained_micro):
    model, corpus, hist = trained_micro
    from models.bitnet.train import evaluate_ppl

    fresh = BitNetModel(model.config, True)
    before = evaluate_ppl(fresh, corpus.val, 32, 16)
    assert before > 100                          # ~uniform over 256 bytes at initialization
    assert hist["val_ppl"] < before / 4          # the repetitive text is learned
    assert np.isclose(hist["val_ppl"], evaluate_ppl(model, corpus.val, 32, 16), rtol=1e-6)
