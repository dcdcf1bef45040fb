"""Limits checked before work: sizes this machine and the target can hold.

Every command checks the size of what it is asked to build *before* it allocates, elaborates,
simulates or synthesizes, from closed-form figures (parameter counts, storage bits, the
kernel's own cycle formula). Over a limit it raises one :class:`~hwsim.errors.HwsimError`
line naming the parameter, its value and the limit — and the override flag where a user may
really want to go on.

The limits are named constants; each docstring says why it has its value.
"""

from __future__ import annotations

import math
import os

from hwsim.errors import HwsimError

__all__ = ["MAX_CONTEXT", "MAX_DESIGN_BITS", "MAX_DESIGN_CYCLES", "MAX_KERNEL_PARAM",
           "MAX_KERNEL_SCALE",
           "MAX_PROMPT", "MAX_SIM_CYCLES", "MAX_SWEEP_POINTS", "MODEL_MEMORY_FRACTION",
           "check_budget", "check_kernel_args", "check_kernel_design", "check_kernel_sim",
           "check_model_memory", "check_sweep_grid", "design_cycles", "machine_memory",
           "storage_bits"]

#: Largest value of one integer kernel parameter (rows, cols, tokens, neurons …), checked on
#: the raw command-line value before the parameter object is built (some build weights).
#: 2¹⁶ is above every dimension of the seed models' layers (BitNet 2B4T's FFN is 6 912 wide)
#: and keeps one dimension from asking for gigabytes on its own.
MAX_KERNEL_PARAM = 1 << 16

#: Largest growth of a kernel over its registered default design: the product, over its
#: integer parameters set above their defaults, of value / default. A kernel's parameter
#: function may build weights from the raw values before any closed-form check can run
#: (``swiftchannel-conv``: ``oc·ic·k·k`` int64 codes); 2¹⁶ times the default keeps those
#: under half a gigabyte.
MAX_KERNEL_SCALE = 1 << 16

#: Largest on-chip storage (bits of all memories) of a design that ``rtl emit``, ``sim`` and
#: ``fpga build`` elaborate. Amaranth writes every memory bit as a Python object on its way to
#: RTLIL: a ternary MVU with 2 Mibit of weights emits in 5 s and 330 MB, one with 32 Mibit ran
#: out of 3.7 GB after a minute. 4 Mibit stays within about 10 s and 1 GB.
MAX_DESIGN_BITS = 1 << 22

#: Largest figure of a kernel's own cycle formula (one vector, token or frame; see the
#: manifest's ``cycles``) for a design to be elaborated. The kernels read their stored data
#: one word per cycle, so this bounds memory depth where a kernel states no storage formula.
MAX_DESIGN_CYCLES = 1 << 20

#: Largest figure of a kernel's cycle formula for ``hwsim sim``: Icarus simulates these
#: designs at 1 000 – 16 000 cycles/s and a run has several cases of 1 – 3 vectors each, so
#: 200 000 cycles per vector is already minutes of simulation.
MAX_SIM_CYCLES = 200_000

#: Largest ``estimate --sweep`` grid. One point prices both phases of a model (about 10 ms
#: for the seed models), so 10 000 points are a couple of minutes and a readable CSV.
MAX_SWEEP_POINTS = 10_000

#: Longest prefill (``estimate --prompt``): a causal prefill is priced query by query (each
#: query attends to a different number of keys): 2¹⁷ tokens take about 5 s, 2²⁰ take 19 s.
MAX_PROMPT = 1 << 17

#: Largest decode context (``estimate --context``): the decode estimate is closed form, but
#: 2²⁴ tokens is well past any published model's context window (2B4T: 4 096).
MAX_CONTEXT = 1 << 24

#: Fraction of this machine's available memory a model may take (its float32 parameters, the
#: training run's gradients and optimizer state on top): the rest is for activations, the
#: data and the other processes.
MODEL_MEMORY_FRACTION = 0.5


def machine_memory() -> tuple[int, int]:
    """``(total, available)`` bytes of this machine's memory: ``MemTotal`` and
    ``MemAvailable`` from ``/proc/meminfo``, else ``os.sysconf`` (available = free pages)."""
    info = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if parts and parts[0].isdigit():
                    info[key] = int(parts[0]) * 1024
    except OSError:
        pass
    if "MemTotal" in info:
        return info["MemTotal"], info.get("MemAvailable", info.get("MemFree", info["MemTotal"]))
    page = os.sysconf("SC_PAGE_SIZE")
    total = page * os.sysconf("SC_PHYS_PAGES")
    try:
        avail = page * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError):
        avail = total
    return total, avail


def _fmt(v) -> str:
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.3g}"
    return f"{int(v):,}"


def check_budget(name: str, value, limit, hint: str = "", unit: str = "") -> None:
    """Raise one line ``"<name> <value> [unit] exceeds the limit <limit> [unit][; hint]"`` when
    ``value > limit``."""
    if value > limit:
        u = f" {unit}" if unit else ""
        raise HwsimError(f"{name} {_fmt(value)}{u} exceeds the limit {_fmt(limit)}{u}"
                         + (f"; {hint}" if hint else ""))


# ---- kernels ---------------------------------------------------------------------------------
def check_kernel_args(kernel, values: dict, force: bool = False, flag: str = "--force") -> None:
    """Before the parameter object is built (some build weights from the raw values): each
    integer parameter of ``kernel`` (a registry entry; ``values`` the raw ones) at most
    :data:`MAX_KERNEL_PARAM`, and together at most :data:`MAX_KERNEL_SCALE` times the
    registered default design. Seeds are not sizes."""
    if force:
        return
    scale, grown = 1.0, []
    for cp in kernel.cli_params:
        v = values.get(cp.name)
        if (cp.type is not int or cp.name.endswith("seed") or isinstance(v, bool)
                or not isinstance(v, int)):
            continue
        opt = f"--{cp.name.replace('_', '-')}"
        check_budget(f"{kernel.name} {opt}", v, MAX_KERNEL_PARAM, f"pass {flag} to go on")
        if isinstance(cp.default, int) and 0 < cp.default < v:
            scale *= v / cp.default
            grown.append(opt)
    if scale > MAX_KERNEL_SCALE:
        raise HwsimError(f"{kernel.name} {' × '.join(grown)} make the design {scale:,.0f} times "
                         f"the default, over the limit {MAX_KERNEL_SCALE:,}; pass {flag} to go on")


def _numbers(obj):
    if isinstance(obj, bool):
        return
    if isinstance(obj, int | float):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from _numbers(v)


def design_cycles(kernel, params) -> int:
    """The largest figure of ``kernel``'s cycle formula for ``params`` (one vector, token or
    frame), as its manifest states it from the golden module."""
    return int(max(_numbers(kernel.manifest(params).get("cycles", {})), default=0))


def storage_bits(kernel, params) -> int | None:
    """Bits of all memories of ``kernel``'s design for ``params``: the closed-form
    ``storage_bits(params)`` of the kernel's golden module (the module of the parameter
    object's class, else of the registry's ``params_cls``), or None where none states one."""
    import importlib

    for module in (type(params).__module__, kernel.params_cls.__module__):
        fn = getattr(importlib.import_module(module), "storage_bits", None)
        if fn is not None:
            return int(fn(params))
    return None


def check_kernel_design(kernel, params, force: bool = False, flag: str = "--force") -> None:
    """Before elaboration: the design's storage bits (where its golden module states them) at
    most :data:`MAX_DESIGN_BITS`, the golden module's own ``rtl_limits(params)`` (``(name,
    value, limit)`` triples) and its cycle formula at most :data:`MAX_DESIGN_CYCLES`."""
    if force:
        return
    import importlib

    bits = storage_bits(kernel, params)
    if bits is not None:
        check_budget(f"{kernel.name} on-chip memory", bits, MAX_DESIGN_BITS,
                     f"pass {flag} to elaborate anyway", "bits")
    rtl_limits = getattr(importlib.import_module(type(params).__module__), "rtl_limits", None)
    for name, value, limit in (rtl_limits(params) if rtl_limits else ()):
        check_budget(f"{kernel.name} {name}", value, limit, f"pass {flag} to elaborate anyway")
    check_budget(f"{kernel.name} cycles per item", design_cycles(kernel, params),
                 MAX_DESIGN_CYCLES, f"pass {flag} to elaborate anyway")


def check_kernel_sim(kernel, params, force: bool = False) -> None:
    """Before ``hwsim sim`` builds anything: the kernel's cycle formula at most
    :data:`MAX_SIM_CYCLES` (the design limits apply too)."""
    if force:
        return
    check_budget(f"{kernel.name} simulated cycles per item", design_cycles(kernel, params),
                 MAX_SIM_CYCLES, "pass --force to simulate anyway")
    check_kernel_design(kernel, params)


# ---- estimate --------------------------------------------------------------------------------
def check_sweep_grid(axes: list[int], limit: int = MAX_SWEEP_POINTS) -> int:
    """The number of points of a grid with ``axes`` values per axis; raise when over ``limit``
    (``--max-points``)."""
    n = math.prod(axes)
    check_budget("--sweep points", n, limit,
                 "grid " + " × ".join(map(str, axes)) + "; raise --max-points to run it")
    return n


# ---- models ----------------------------------------------------------------------------------
def check_model_memory(name: str, params: int, bytes_per_param: int = 4,
                       fraction: float = MODEL_MEMORY_FRACTION) -> None:
    """``params`` × ``bytes_per_param`` at most ``fraction`` of this machine's available
    memory (:func:`machine_memory`)."""
    _, avail = machine_memory()
    need = params * bytes_per_param
    limit = int(avail * fraction)
    if need > limit:
        raise HwsimError(f"{name}: {params:,} parameters need {need / 2**30:,.1f} GiB, more than "
                         f"the limit {limit / 2**30:,.1f} GiB ({fraction:.0%} of the "
                         f"{avail / 2**30:,.1f} GiB available)")
