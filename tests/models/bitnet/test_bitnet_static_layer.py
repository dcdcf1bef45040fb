"""A trained BitNet decoder layer as a static-quantizer block (models.bitnet.static_layer): the
trained ternary codes, gains and RoPE tables carry over exactly, the calibrated block tracks the
QAT layer on held-out text, the export is what ``hwsim compile``'s front end takes whole, and
models it cannot represent are refused."""

import numpy as np
import pytest
import torch

from hwsim.compile import frontend
from hwsim.errors import HwsimError
from models.bitnet.config import BitNetConfig
from models.bitnet.model import BitNetModel
from models.bitnet.static_layer import (
    export_static_layer,
    hidden_states,
    static_agreement,
    static_layer,
)

T = 8


def _windows(corpus, n, seed):
    starts = np.random.default_rng(seed).integers(0, corpus.val.size - T, n)
    return np.stack([corpus.val[s:s + T] for s in starts]).astype(np.int64)


@pytest.fixture(scope="module")
def block(trained_micro):
    model, corpus, _ = trained_micro
    return static_layer(model, 1, _windows(corpus, 8, 0))


def test_trained_parameters_carry_over(trained_micro, block):
    model, _, _ = trained_micro
    layer = model.layers[1]
    with torch.no_grad():
        for name, src in (("wq", layer.attn.wq), ("wk", layer.attn.wk), ("w2", layer.ffn.w2)):
            mine, theirs = getattr(block, name).quant_weight(), src.quant_weight()
            assert torch.equal(mine.int(), theirs.int())          # the same ternary codes
            assert torch.allclose(mine.scale, theirs.scale)
    assert torch.equal(block.ffn_sub.weight, layer.ffn.sub_norm.weight)
    assert torch.equal(block.cos, model.rope_cos[:T]) and torch.equal(block.sin,
                                                                      model.rope_sin[:T])


def test_static_block_tracks_the_qat_layer(trained_micro, block):
    model, corpus, _ = trained_micro
    a = static_agreement(model, 1, block, _windows(corpus, 8, 1))
    assert a["windows"] == 8 and a["tokens"] == T
    # int8 per-tensor residual and activations against the QAT layer (per-token int8 inputs
    # of the projections, float elsewhere): measured 0.037 relative RMS, update cosine 0.998
    assert a["rel_rms_error"] < 0.1 and a["update_cosine"] > 0.95


def test_export_is_supported_whole(trained_micro, block, tmp_path):
    model, corpus, _ = trained_micro
    x = hidden_states(model, 1, _windows(corpus, 1, 2))[0].numpy()
    path = export_static_layer(block, x, tmp_path / "layer.onnx", "qonnx")
    graph = frontend.load(path)
    assert frontend.unsupported(graph) == []
    ops = [n.op_type for n in graph.graph.node]
    assert ops.count("RotaryEmbedding") == 2 and ops.count("RMSNormalization") == 4


def test_models_it_cannot_represent_are_refused(micro):
    w = np.zeros((2, T), dtype=np.int64)
    with pytest.raises(HwsimError, match="needs the ternary model"):
        static_layer(BitNetModel(micro, quantized=False), 0, w)
    silu = BitNetConfig("silu", hidden=32, ffn=64, layers=1, heads=4, kv_heads=2, vocab=256,
                        max_seq=64, act="silu", source="tests")
    with pytest.raises(HwsimError, match="relu² FFN"):
        static_layer(BitNetModel(silu, quantized=True), 0, w)
    with pytest.raises(HwsimError, match="layer 5 does not exist"):
        static_layer(BitNetModel(micro, quantized=True), 5, w)

