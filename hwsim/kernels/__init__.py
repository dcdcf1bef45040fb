"""The kernel registry: one entry per hardware kernel, binding its four faces.

A :class:`Kernel` names the golden module (spec, cycle formula, action counts), the Amaranth
component, the cocotb testbench and the stimulus, so the CLI, the flows and the benchmarks
treat every kernel the same way. Components are imported lazily: listing kernels costs nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from hwsim.errors import HwsimError

__all__ = ["KERNELS", "CliParam", "Kernel", "get_kernel"]


@dataclass(frozen=True)
class CliParam:
    """An elaboration parameter exposed as ``--name`` on the command line."""

    name: str
    type: type
    default: object
    help: str


@dataclass(frozen=True)
class Kernel:
    name: str                       # CLI name, e.g. "ternary-mvu"
    top: str                        # Verilog module name, e.g. "ternary_mvu"
    summary: str
    params_cls: type                # frozen dataclass validated in __post_init__
    cli_params: tuple[CliParam, ...]
    component_path: str             # "module:Class" of the Amaranth component
    testbench: str                  # cocotb test module
    manifest: Callable              # params -> dict (parameters, cycle formulas)
    cases: Callable                 # (params, seed, quick) -> list of stimulus cases

    def params(self, **kwargs):
        return self.params_cls(**kwargs)

    def component(self, params):
        module, cls = self.component_path.split(":")
        return getattr(importlib.import_module(module), cls)(params)


def _registry() -> dict[str, Kernel]:
    from . import absmax_barrier, attention_head, lo_topk, swiftchannel, ternary_mvu

    return {
        k.name: k
        for k in (ternary_mvu.KERNEL, absmax_barrier.KERNEL, lo_topk.KERNEL, attention_head.KERNEL,
                  swiftchannel.CONV, swiftchannel.GATE)
    }


KERNELS: dict[str, Kernel] = _registry()


def get_kernel(name: str) -> Kernel:
    try:
        return KERNELS[name]
    except KeyError:
        raise HwsimError(f"unknown kernel {name!r}; known: {', '.join(sorted(KERNELS))}") from None
