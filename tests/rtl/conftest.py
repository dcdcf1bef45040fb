"""Shared fixture of the layer kernels' real-token tests."""

import numpy as np
import pytest
import torch


def _micro(**form):
    from models.bitnet.config import BitNetConfig
    from models.bitnet.integer_model import build_integer_model
    from models.bitnet.model import BitNetModel

    cfg = BitNetConfig("micro", hidden=32, ffn=64, layers=2, heads=4, kv_heads=2, vocab=256,
                       max_seq=32, source="tests", **form)
    torch.manual_seed(3)
    torch.set_num_threads(1)
    rng = np.random.default_rng(3)
    im = build_integer_model(BitNetModel(cfg).eval(), rng.integers(0, 256, (4, 16)))
    return im, rng.integers(0, 256, 10)


@pytest.fixture(scope="module")
def micro_model():
    """``(im, tokens)``: an integer BitNet of the micro shape (hidden 32, ffn 64, 2 layers,
    random ternary weights, seed 3) and the 10 tokens whose last one is the decode token the
    kernels' tests replay. Read-only."""
    return _micro()


def _token(im, tokens):
    from hwsim.golden.vitallm import bitnet_layer as bl
    from models.bitnet.integer_model import integer_forward

    cap: dict = {}
    integer_forward(im, tokens, capture=cap, attend=bl.sparse_attend(0.3))
    return im, cap


@pytest.fixture(scope="module")
def micro_token(micro_model):
    """``(im, cap)``: :func:`micro_model` and the captures of its forward pass over the 10
    tokens with sparse attention K/M = 3/10. Read-only: the tests pass it to ``real_case``."""
    return _token(*micro_model)


@pytest.fixture(scope="module")
def micro_silu_token():
    """As :func:`micro_token` for the SiLU form without SubLN (``act="silu"``,
    ``subln=False``: the 1bitLLM configurations), same shape, seed and tokens."""
    return _token(*_micro(act="silu", subln=False))
