"""Shared fixtures of the cocotb tier: the simulator check, and the trained BitNet-tiny the
layer kernels' real-token tests replay."""

import numpy as np
import pytest

from hwsim.errors import ToolMissingError
from hwsim.sim.runner import SIMULATORS, check_simulator


def required_simulators(item) -> list[str]:
    """The simulators a cocotb test needs: its ``sim`` parameter, or every simulator when it
    has none (it runs both, or picks one itself)."""
    callspec = getattr(item, "callspec", None)
    sim = callspec.params.get("sim") if callspec is not None else None
    return [sim] if sim in SIMULATORS else list(SIMULATORS)


@pytest.fixture(autouse=True)
def _simulator_present(request):
    """Fail every ``cocotb``-marked test whose simulator is missing, with the one message of
    :func:`hwsim.sim.runner.check_simulator` (never a skip: `make setup` installs both)."""
    if request.node.get_closest_marker("cocotb") is None:
        return
    missing = []
    for sim in required_simulators(request.node):
        try:
            check_simulator(sim)
        except ToolMissingError as e:
            missing.append(str(e))
    if missing:
        pytest.fail(f"cocotb test cannot run: {'; '.join(missing)}", pytrace=False)


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
