"""Test-suite settings shared by every area."""

import fcntl
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

from hwsim.errors import ToolMissingError
from hwsim.sim.runner import SIMULATORS, check_simulator

# Tests never write into the working tree: hypothesis keeps its caches in a temporary folder and
# uses no example database. In CI the property tests draw the same examples on every run, so
# whether a submission lands does not depend on luck.
set_hypothesis_home_dir(tempfile.mkdtemp(prefix="hwsim-hypothesis-"))
settings.register_profile("hwsim", database=None, derandomize=bool(os.environ.get("CI")))
settings.load_profile("hwsim")


@pytest.fixture(scope="session")
def bitnet_tiny(tmp_path_factory) -> Path:
    """A briefly trained BitNet-tiny checkpoint folder (its ``ternary/`` model), built once.

    40 training steps of the ternary model on the stdlib corpus (seed 0): the real-token RTL
    tests need the tiny shape and real weights, not a good model. Under pytest-xdist the
    workers share one folder beside their own temporary folders; a file lock lets the first
    one train and the others reuse the result.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the workers of this session only
    folder = root / "bitnet-tiny"
    with open(root / "bitnet-tiny.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "ternary" / "meta.json").exists():
            _train_bitnet_tiny(folder)
    return folder


def _train_bitnet_tiny(folder: Path) -> None:
    import torch

    from models.bitnet.checkpoint import save_checkpoint
    from models.bitnet.config import get_config
    from models.bitnet.data import stdlib_corpus
    from models.bitnet.train import TrainSettings, train_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        corpus = stdlib_corpus()
        settings = TrainSettings(steps=40, eval_windows=1)
        model, hist = train_model(get_config("tiny"), True, corpus, settings, progress=False)
        save_checkpoint(model, folder / "ternary", {"history": hist, "corpus": corpus.describe()})
    finally:
        torch.set_num_threads(threads)


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
