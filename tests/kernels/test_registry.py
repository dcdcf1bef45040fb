"""The kernel registry is the only binding: every kernel's golden entry point and cost hooks
resolve, and the estimator reaches every operation's figures through ``KERNELS``."""

import inspect

import pytest

from hwsim.errors import HwsimError
from hwsim.estimate import load_arch
from hwsim.estimate.engine import action_energy, run_phase
from hwsim.estimate.kernels import cost, kernel_sources
from hwsim.estimate.tables import load_tables
from hwsim.estimate.workload import model_workloads
from hwsim.kernels import KERNELS, find_cost, get_kernel

#: the estimator's cores (:mod:`hwsim.estimate.engine`)
CORES = {"tint", "booth", "nonlinear"}


def check_kernel(kernel) -> None:
    """What the registry promises of one kernel (shared with tests/kernels/test_add_a_kernel.py):
    the golden entry point resolves to a function, and for its default and test parameters the
    cycle hook gives the manifest's latency (an int ≥ 1) and the action hook ints ≥ 0 — or the
    kernel is composite and names registered parts."""
    assert inspect.isfunction(kernel.golden_fn()), kernel.golden_name
    for kwargs in ({}, *kernel.test_params):
        p = kernel.params(**kwargs)
        cycles = kernel.cycles(p)
        assert type(cycles) is int and cycles >= 1, (kernel.name, kwargs, cycles)
        assert kernel.manifest(p)["latency"]["cycles"] == cycles, (kernel.name, kwargs)
        if kernel.actions is not None:
            actions = kernel.actions(p)
            assert actions and all(isinstance(a, str) and type(n) is int and n >= 0
                                   for a, n in actions.items()), (kernel.name, actions)
    if kernel.actions is None:
        assert kernel.parts, kernel.name
    assert all(part in KERNELS for part in kernel.parts), (kernel.name, kernel.parts)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_every_kernel_resolves_its_golden_and_cost_hooks(name):
    check_kernel(KERNELS[name])


def test_golden_entry_points_live_in_the_golden_package():
    for kernel in KERNELS.values():
        assert kernel.golden_name.startswith("hwsim.golden."), kernel.golden_name


def test_each_priced_operation_has_one_kernel():
    names = [c.name for k in KERNELS.values() for c in k.costs]
    assert len(names) == len(set(names)), names
    assert {c.core for k in KERNELS.values() for c in k.costs} <= CORES
    # the attention engine and softmax are priced by the attention head that runs them
    assert find_cost("int8_matmul")[0].name == find_cost("softmax_int")[0].name == "attention-head"
    with pytest.raises(HwsimError, match="no registered kernel prices"):
        find_cost("no_such_op")


@pytest.mark.parametrize("target", ["vitallm", "xczu28dr"])
def test_estimator_figures_are_the_registry_hooks(target):
    """Every op of a decode and a prefill (sparse attention included): the estimator's cycles,
    core and actions are the registered Cost entry's, and its JSON names that kernel."""
    arch = load_arch(target)
    tables = load_tables(arch.tables)
    sources = kernel_sources()
    priced = action_energy(arch, tables)
    for wl in model_workloads("bitnet-tiny", 8, 16, False) + model_workloads("bitnet-tiny", 8, 16,
                                                                          False, keep=4):
        phase = run_phase(wl, arch, tables)
        for layer, result in zip(wl.layers, phase.layers, strict=True):
            for op, r in zip(layer.ops, result.ops, strict=True):
                kernel, c = find_cost(op.kernel)
                cycles = c.cycles(op.shape, op.vectors, arch)
                actions = c.actions(op.shape, op.vectors, arch)
                assert r.compute_cycles == cycles and r.core == c.core, (op.name, r)
                assert cost(op.kernel, op.shape, op.vectors, arch).actions == actions
                assert set(actions) <= set(priced), (op.name, actions)
                assert sources[op.kernel].startswith(f"kernel {kernel.name} (golden "), sources


def test_get_kernel_names_the_known_ones():
    with pytest.raises(HwsimError, match="unknown kernel"):
        get_kernel("no-such-kernel")
