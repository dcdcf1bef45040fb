"""Shared fixture of the layer kernels' real-token cocotb tests."""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def tiny_decode_tokens(bitnet_tiny):
    """``(im, tokens)``: the integer model of the briefly trained BitNet-tiny
    (:func:`tests.conftest.bitnet_tiny`; static scales calibrated on 8 training windows of 128
    bytes, seed 0) and the 128 bytes ``corpus.val[1000:1128]`` whose last one is the decode
    token the tests replay."""
    import torch

    from models.bitnet.checkpoint import load_checkpoint
    from models.bitnet.data import stdlib_corpus
    from models.bitnet.integer_model import build_integer_model

    torch.set_num_threads(1)
    corpus = stdlib_corpus()
    model, _ = load_checkpoint(bitnet_tiny / "ternary")
    rng = np.random.default_rng(0)
    starts = rng.integers(0, corpus.train.size - 129, 8)
    im = build_integer_model(model, np.stack([corpus.train[s:s + 128]
                                              for s in starts]).astype(np.int64))
    return im, corpus.val[1000:1128].astype(np.int64)
