"""The whole model on golden kernels with integer codes between layers, against torch."""

import dataclasses

import numpy as np
import pytest
import torch

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import layer_codes as lc
from hwsim.golden.vitallm import ternary_mvu as mvu
from models.bitnet.integer_model import (
    _act,
    attach_datapath,
    build_integer_model,
    integer_forward,
)
from models.bitnet.model import BitNetModel
from quant.brevitas_quantizers import per_token_codes


@pytest.fixture(scope="module")
def integer(trained_micro):
    model, corpus, _ = trained_micro
    calib = np.stack([corpus.train[i * 40:i * 40 + 32] for i in range(8)]).astype(np.int64)
    return model, corpus, build_integer_model(model, calib)


def test_integer_forward_is_integer_and_deterministic(integer):
    _, corpus, im = integer
    tok = corpus.val[:32].astype(np.int64)
    a = integer_forward(im, tok)
    assert a.dtype == np.int64 and a.shape == (32, 256)
    assert np.array_equal(a, integer_forward(im, tok))
    # causal: the first 20 positions do not see tokens 20…31
    b = integer_forward(im, np.concatenate([tok[:20], (tok[20:] + 1) % 256]))
    assert np.array_equal(a[:20], b[:20])


def test_greedy_agreement_with_datapath_model(integer):
    model, corpus, im = integer
    fq = attach_datapath(model, im)
    win = corpus.val[:8 * 32].reshape(8, 32).astype(np.int64)
    with torch.no_grad():
        ref = fq(torch.as_tensor(win)).argmax(-1).numpy()
        qat = model(torch.as_tensor(win)).argmax(-1).numpy()
    got = np.stack([integer_forward(im, w).argmax(-1) for w in win])
    assert (got == ref).mean() >= 0.99
    assert (got == qat).mean() >= 0.95        # the plain QAT model has float attention


def test_first_layer_codes_and_exact_accumulators(integer):
    model, corpus, im = integer
    tok = corpus.val[:32].astype(np.int64)
    L = im.layers[0]
    r = im.embed[tok]
    a, _ = _act(lc.rms_rows(r, L.attn_norm))
    with torch.no_grad():
        h = model.layers[0].attn_norm(model.embed(torch.as_tensor(tok)))
    want, _ = per_token_codes(h)
    # integer RMSNorm rounds differently from float32 only next to int8 rounding ties
    assert (a == want.numpy()).mean() >= 0.995
    # on the same codes the ternary accumulators are exact: == the integer product
    for name in ("wq", "w1"):
        ref = torch.from_numpy(a).double() @ torch.from_numpy(L.proj[name].W).double().T
        assert np.array_equal(mvu.ternary_mvu_acc(L.proj[name].W, a), ref.numpy().astype(np.int64))


def test_rejections(micro, integer):
    _, _, im = integer
    with pytest.raises(HwsimError, match="ternary model"):
        build_integer_model(BitNetModel(micro, False), np.zeros((1, 4), np.int64))
    bare = BitNetModel(dataclasses.replace(micro, subln=False), True)
    with pytest.raises(HwsimError, match="relu² FFN needs SubLN"):
        build_integer_model(bare, np.zeros((1, 4), np.int64))
    with pytest.raises(HwsimError, match="vocabulary"):
        integer_forward(im, [1, 2, 300])


@pytest.mark.cocotb
def test_rtl_attention_head_on_real_qkv(integer, tmp_path):
    """One head of the trained model's layer 1, causal prefill of 8 tokens, through the RTL."""
    from hwsim.golden.common import attention_head as ah
    from hwsim.kernels import get_kernel
    from hwsim.kernels.attention_head import ops_to_arrays
    from hwsim.sim.runner import simulate

    _, corpus, im = integer
    cap = {}
    integer_forward(im, corpus.val[100:108].astype(np.int64), capture=cap)
    layer, head = 1, 2
    rep = im.heads // im.kv_heads
    q, k, v = cap[layer]["q"][:, head], cap[layer]["k"][:, head // rep], cap[layer]["v"][:, head // rep]
    M, S = im.layers[layer].score_mult[head]
    p = dataclasses.replace(im.attn, max_len=8, lanes=im.head_dim, exp_lanes=4)
    ops = [("clear",), *[op for t in range(8) for op in (("kv", k[t], v[t]), ("q", q[t]))]]
    golden = ah.run_ops(ops, M, S, p)
    # the kernel's operation stream gives exactly what the integer model computed
    assert np.array_equal(np.stack([o for o, _ in golden]), cap[layer]["o"][:, head])
    assert [a for _, a in golden] == cap[layer]["amax"][:, head].tolist()
    kernel = get_kernel("attention-head")
    case = {"name": "bitnet_layer1_head2", "arrays": {**ops_to_arrays(ops, p), "mult": M,
                                                      "shift": S}}
    rep_ = simulate(kernel, p, [case], tmp_path / "sim", sim="icarus")
    assert rep_.passed, rep_.failures
    assert all(c["bit_exact"] for c in rep_.cases)
