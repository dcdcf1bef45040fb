"""The kernel registry: one entry per hardware kernel, binding its four faces.

A :class:`Kernel` names the golden module (spec, cycle formula, action counts), the Amaranth
component, the cocotb testbench and the stimulus, so the CLI, the flows and the benchmarks
treat every kernel the same way. A kernel registers by being defined in a module of this
package (no list to edit). Components are imported lazily: listing kernels costs nothing.
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
    #: small elaboration parameters (kwargs of ``params``) the registry-wide tests simulate
    test_params: tuple[dict, ...] = ()

    def params(self, **kwargs):
        return self.params_cls(**kwargs)

    def component(self, params):
        module, cls = self.component_path.split(":")
        return getattr(importlib.import_module(module), cls)(params)


def _registry() -> dict[str, Kernel]:
    """Every :class:`Kernel` defined at the top level of a module in this package."""
    import pkgutil

    found: dict[str, Kernel] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, Kernel):
                found[value.name] = value
    return dict(sorted(found.items()))


KERNELS: dict[str, Kernel] = _registry()


def get_kernel(name: str) -> Kernel:
    try:
        return KERNELS[name]
    except KeyError:
        raise HwsimError(f"unknown kernel {name!r}; known: {', '.join(sorted(KERNELS))}") from None
