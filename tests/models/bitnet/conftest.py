"""Shared fixtures: a micro BitNet shape (fast everywhere) and a briefly trained ternary model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.bitnet.config import BitNetConfig

MICRO = BitNetConfig("micro", hidden=32, ffn=64, layers=2, heads=4, kv_heads=2, vocab=256,
                     max_seq=64, source="tests")


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture
def micro():
    return MICRO


def byte_text(n: int = 20000, seed: int = 0) -> np.ndarray:
    """Repetitive ASCII text a micro model learns in a few dozen steps."""
    rng = np.random.default_rng(seed)
    words = [b"def ", b"return ", b"self", b".x", b" = ", b"(", b")", b":\n", b"    ", b"import "]
    out = b"".join(words[i] for i in rng.integers(0, len(words), n // 3))
    return np.frombuffer(out[:n], dtype=np.uint8).copy()


@pytest.fixture(scope="session")
def trained_micro():
    """(model, corpus): the micro ternary model after 60 steps on repetitive text."""
    from models.bitnet.data import Corpus
    from models.bitnet.train import TrainSettings, train_model

    torch.set_num_threads(1)
    corpus = Corpus(byte_text(20000, 0), byte_text(4000, 1), "test text")
    s = TrainSettings(steps=60, batch=8, seq=32, lr=3e-3, warmup=5, eval_windows=16)
    model, hist = train_model(MICRO, True, corpus, s, progress=False)
    return model, corpus, hist
