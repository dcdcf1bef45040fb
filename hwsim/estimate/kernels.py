"""The estimator's view of the kernels: every operation's cycles and actions, through the registry.

The estimator keeps no list of kernels and re-derives no formula: a workload op names an
operation (``"ternary_mvu"``, ``"int8_matmul"``…) and :func:`cost` evaluates the
:class:`hwsim.kernels.Cost` entry that a registered kernel (:data:`hwsim.kernels.KERNELS`)
carries for it — the golden module's own cycle formula and action counts, mapped into one
action vocabulary (the keys of :data:`ACTIONS`), which :mod:`hwsim.estimate.engine` multiplies
by the energy tables. :func:`kernel_sources` says, for the estimate's JSON, which kernel and
golden entry point stand behind each operation.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.kernels import KERNELS, find_cost
from hwsim.kernels._costs import ternary_tile_params

__all__ = ["ACTIONS", "KernelCost", "cost", "kernel_sources", "ternary_tile_params"]

#: action → what it is (the engine maps each to an energy-table entry)
ACTIONS = {
    "ternary_add": "one ternary add/subtract of an int8 activation in a lane",
    "ternary_skip": "a lane skipped on a zero weight (clock-gated, no energy)",
    "acc_add": "one 32-bit-class accumulation of an adder-tree sum",
    "weight_read_bits": "weight bits read from the on-chip weight buffer",
    "act_read_bits": "activation bits read from a tile's activation registers",
    "act_write_bits": "activation bits written into a tile's activation registers",
    "requant_mul": "one requantization multiply (≤ 32 bit)",
    "out_bits": "result bits written back to the activation buffer",
    "int8_mul": "one 8-bit × 8-bit multiply",
    "add32": "one 32-bit add",
    "mul32": "one 32-bit multiply",
    "register_read_bits": "operand bits read from registers",
    "add8": "one 8-bit add or compare",
    "add16": "one 16-bit add or shift",
}


@dataclass(frozen=True)
class KernelCost:
    kernel: str                 # the operation's name, e.g. "int8_matmul"
    core: str
    cycles: int
    actions: dict[str, int]


def cost(kernel: str, shape: dict, vectors: int, arch) -> KernelCost:
    """Cycles and actions of ``vectors`` inputs through operation ``kernel`` of ``shape`` on
    ``arch``, from the registered kernel that prices it."""
    _, c = find_cost(kernel)
    return KernelCost(kernel, c.core, int(c.cycles(shape, vectors, arch)),
                      c.actions(shape, vectors, arch))


def kernel_sources() -> dict[str, str]:
    """operation → ``"kernel <name> (golden <module:function>), core <core>"``, for every
    operation a registered kernel prices."""
    return {c.name: f"kernel {k.name} (golden {k.golden_name}), core {c.core}"
            for k in KERNELS.values() for c in k.costs}
