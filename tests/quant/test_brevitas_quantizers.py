import numpy as np
import torch
from brevitas.nn import QuantLinear

from quant.brevitas_quantizers import (
    PerTokenAbsmaxInt8,
    TernaryAbsmeanWeight,
    per_token_codes,
    ternary_codes,
)


def test_ternary_codes_match_brevitas_quantizer():
    torch.manual_seed(0)
    layer = QuantLinear(48, 24, bias=False, weight_quant=TernaryAbsmeanWeight)
    qw = layer.quant_weight()
    codes, scale = ternary_codes(layer.weight)
    assert torch.equal(qw.int().to(torch.int8), codes)
    assert set(codes.unique().tolist()) == {-1, 0, 1}
    # same float32 mean over the same tensor; allow a reduction-order difference of 1 ulp
    assert abs(float(qw.scale.detach()) - scale) <= 1e-7 * scale
    assert abs(scale - float(layer.weight.detach().abs().mean())) <= 1e-7 * scale
    # the paper's formula: W_q = clamp(round(W / mean|W|), -1, 1)
    ref = np.clip(np.round(layer.weight.detach().numpy() / scale), -1, 1)
    assert np.array_equal(ref.astype(np.int8), codes.numpy())


def test_per_token_codes_are_absmax_int8():
    torch.manual_seed(1)
    x = torch.randn(3, 5, 40) * torch.rand(3, 5, 1) * 10
    q, step = per_token_codes(x)
    assert step.shape == (3, 5, 1)
    assert torch.equal(q, q.round()) and q.min() >= -128 and q.max() <= 127
    assert torch.equal(q.abs().amax(-1), torch.full((3, 5), 127.0))  # the absmax maps to ±127
    # the reconstruction error is at most half a step
    assert ((q * step - x).abs() <= step / 2 * (1 + 1e-6)).all()


def test_fake_quant_uses_straight_through_gradient():
    x = torch.randn(4, 16, requires_grad=True)
    y = PerTokenAbsmaxInt8()(x)
    q, step = per_token_codes(x)
    assert torch.equal(y.detach(), q * step)
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


def test_zero_token_does_not_divide_by_zero():
    x = torch.zeros(2, 8)
    q, step = per_token_codes(x)
    assert torch.equal(q, torch.zeros_like(q)) and (step > 0).all()
