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


def test_a_batch_equals_each_sequence_alone(integer, monkeypatch):
    import models.bitnet.integer_model as imod

    _, corpus, im = integer
    win = corpus.val[:5 * 24].reshape(5, 24).astype(np.int64)
    alone = np.stack([integer_forward(im, w) for w in win])
    monkeypatch.setattr(imod, "BATCH_CHUNK", 2)             # 2 + 2 + 1 sequences
    logits, step = integer_forward(im, win, with_step=True)
    assert np.array_equal(logits, alone)
    assert np.array_equal(step[3], integer_forward(im, win[3], with_step=True)[1])
    cap_b, cap_1 = {}, {}
    integer_forward(im, win[:3], capture=cap_b)
    integer_forward(im, win[1], capture=cap_1)
    for layer, codes in cap_1.items():
        for name, v in codes.items():
            assert np.array_equal(np.asarray(cap_b[layer][name])[1], np.asarray(v)), name
    with pytest.raises(HwsimError, match=r"\(T,\) or \(B, T\)"):
        integer_forward(im, win[None])


def test_the_fast_paths_equal_the_int64_products(integer):
    from hwsim.golden.common import exact

    _, corpus, im = integer
    tok = corpus.val[100:132].astype(np.int64)
    fast = integer_forward(im, tok)
    with exact.force_int64():
        assert np.array_equal(integer_forward(im, tok), fast)


@pytest.mark.parametrize("rule", ["dense", "topk", "sparse"])
def test_generation_on_kv_caches_equals_rerunning_every_prefix(integer, rule):
    from hwsim.golden.vitallm import bitnet_layer as bl
    from models.bitnet.integer_model import integer_generate

    _, corpus, im = integer
    attend = {"dense": None, "topk": bl.topk_attend(3), "sparse": bl.sparse_attend(0.5)}[rule]
    prompt = [int(t) for t in corpus.val[:6]]
    seq = list(prompt)
    while len(seq) < 6 + 12:
        seq.append(int(np.argmax(integer_forward(im, seq, attend=attend)[-1])))
    assert integer_generate(im, prompt, 12, attend=attend) == seq
    assert integer_generate(im, prompt, 0) == prompt
    with pytest.raises(HwsimError, match="positions"):
        integer_generate(im, prompt, im.attn.max_len)
    with pytest.raises(HwsimError, match="prompt"):
        integer_generate(im, [], 3)


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
