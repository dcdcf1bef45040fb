"""The kernel registry: one entry per hardware kernel, the only binding of its faces.

A :class:`Kernel` names its golden entry point, its cost hooks (cycles and action counts from
the golden module's formulas), the Amaranth component, the cocotb testbench, the stimulus and
small test parameters, so the CLI, the flows, the benchmarks, the registry-wide tests and the
estimator treat every kernel the same way. Operations the estimator prices
(:mod:`hwsim.estimate`) are :class:`Cost` entries of the kernel whose hardware runs them.

A kernel registers by being defined at the top level of a module of this package (no list to
edit); :func:`register_module` adds the kernels of a module elsewhere (a plug-in, a test) and
:func:`unregister` removes one. Components are imported, and golden entry points resolved,
only when used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hwsim.errors import HwsimError

__all__ = ["KERNELS", "CliParam", "Cost", "Kernel", "find_cost", "get_kernel", "register_module",
           "unregister"]


@dataclass(frozen=True)
class CliParam:
    """An elaboration parameter exposed as ``--name`` on the command line."""

    name: str
    type: type
    default: object
    help: str


@dataclass(frozen=True)
class Cost:
    """An operation the estimator prices, run by a kernel's hardware.

    ``name`` is what a workload's op names (``"int8_matmul"``); ``core`` the estimator's core
    that runs it (``"tint"``, ``"booth"`` or ``"nonlinear"``). ``cycles(shape, vectors, arch)``
    and ``actions(shape, vectors, arch)`` give the compute cycles and the action counts — in
    the estimator's action vocabulary (:data:`hwsim.estimate.kernels.ACTIONS`) — of ``vectors``
    inputs through an operation of ``shape`` (a dict) on ``arch`` (anything indexed by a
    dotted parameter path, e.g. ``arch["booth.lanes"]``); both evaluate the golden module's
    own formulas.
    """

    name: str
    core: str
    cycles: Callable[[dict, int, Mapping], int]
    actions: Callable[[dict, int, Mapping], dict[str, int]]


@dataclass(frozen=True)
class Kernel:
    name: str                       # CLI name, e.g. "ternary-mvu"
    top: str                        # Verilog module name, e.g. "ternary_mvu"
    summary: str
    params_cls: type                # frozen dataclass validated in __post_init__
    cli_params: tuple[CliParam, ...]
    component_path: str             # "module:Class" of the Amaranth component
    testbench: str                  # cocotb test module
    manifest: Callable              # params -> dict (parameters, numeric contract, timing)
    cases: Callable                 # (params, seed, quick) -> list of stimulus cases
    #: small elaboration parameters (kwargs of ``params``) the registry-wide tests simulate
    test_params: tuple[dict, ...] = ()
    #: the golden entry point: ``"module:function"`` (resolved lazily) or the function itself
    golden: str | Callable = ""
    #: params -> cycles of one unit (vector, token, query, frame...) from its first input beat
    #: to its last output beat: the golden formula the manifest's ``latency`` evaluates
    cycles: Callable | None = None
    #: params -> the golden module's action counts of one unit; ``None`` only for a composite
    #: kernel, whose counts are those of its ``parts``
    actions: Callable | None = None
    #: registered kernels a composite kernel is built from: its action counts are theirs (plus
    #: its glue logic's, which no golden module counts)
    parts: tuple[str, ...] = ()
    #: operations the estimator prices on this kernel's hardware
    costs: tuple[Cost, ...] = ()

    def __post_init__(self):
        if not self.golden or self.cycles is None:
            raise HwsimError(f"kernel {self.name!r}: golden and cycles are required")
        if self.actions is None and not self.parts:
            raise HwsimError(f"kernel {self.name!r}: actions may be None only for a composite "
                             "kernel (one that names its parts)")

    def params(self, **kwargs):
        return self.params_cls(**kwargs)

    def component(self, params, **contents):
        """The Amaranth component; ``contents`` (e.g. an MVU's ``weights``) are memory
        contents baked in at elaboration, where the component accepts them."""
        module, cls = self.component_path.split(":")
        return getattr(importlib.import_module(module), cls)(params, **contents)

    def golden_fn(self) -> Callable:
        """The golden entry point (imports its module when named by path)."""
        if callable(self.golden):
            return self.golden
        module, fn = self.golden.split(":")
        return getattr(importlib.import_module(module), fn)

    @property
    def golden_name(self) -> str:
        """``"module:function"`` of the golden entry point."""
        if isinstance(self.golden, str):
            return self.golden
        return f"{self.golden.__module__}:{self.golden.__qualname__}"


def _kernels_of(module) -> list[Kernel]:
    return [v for v in vars(module).values() if isinstance(v, Kernel)]


def _registry() -> dict[str, Kernel]:
    """Every :class:`Kernel` defined at the top level of a module in this package."""
    import pkgutil

    found: dict[str, Kernel] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        for kernel in _kernels_of(importlib.import_module(f"{__name__}.{info.name}")):
            found[kernel.name] = kernel
    return dict(sorted(found.items()))


KERNELS: dict[str, Kernel] = _registry()


def register_module(module) -> list[str]:
    """Register every :class:`Kernel` defined at the top level of ``module`` (a module or its
    dotted name); returns their names. A name already registered is an error."""
    if isinstance(module, str):
        module = importlib.import_module(module)
    new = _kernels_of(module)
    taken = [k.name for k in new if k.name in KERNELS]
    if taken:
        raise HwsimError(f"kernel(s) already registered: {', '.join(taken)}")
    for kernel in new:
        KERNELS[kernel.name] = kernel
    ordered = dict(sorted(KERNELS.items()))
    KERNELS.clear()
    KERNELS.update(ordered)
    return [k.name for k in new]


def unregister(name: str) -> Kernel:
    """Remove kernel ``name`` from :data:`KERNELS`; returns it."""
    get_kernel(name)
    return KERNELS.pop(name)


def get_kernel(name: str) -> Kernel:
    try:
        return KERNELS[name]
    except KeyError:
        raise HwsimError(f"unknown kernel {name!r}; known: {', '.join(sorted(KERNELS))}") from None


def find_cost(name: str) -> tuple[Kernel, Cost]:
    """The registered kernel that prices operation ``name``, and its :class:`Cost`."""
    for kernel in KERNELS.values():
        for cost in kernel.costs:
            if cost.name == name:
                return kernel, cost
    known = sorted(c.name for k in KERNELS.values() for c in k.costs)
    raise HwsimError(f"no registered kernel prices {name!r}; priced: {', '.join(known)}")
