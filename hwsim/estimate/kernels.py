"""Adapters: a kernel's cycles and action counts, from its golden module, for one operation.

The estimator never re-derives a kernel's formula: the ternary projection's cycles and counts
are :func:`hwsim.golden.ternary_mvu.stream_cycles` and :func:`~hwsim.golden.ternary_mvu.action_counts`
for the tile the architecture instantiates. The attention kernels' golden modules are not on
``main`` yet; their adapters call :mod:`hwsim.estimate.interim_attention` (:data:`SOURCES`
says which model each kernel uses). Replacing an interim model by the golden one is a change
of the one adapter function below.

Every adapter returns a :class:`KernelCost` in one action vocabulary (the keys of
:data:`ACTIONS`), which :mod:`hwsim.estimate.engine` multiplies by the energy tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.golden import ternary_mvu as _tmvu

from . import interim_attention as _interim

__all__ = ["ACTIONS", "SOURCES", "KernelCost", "cost", "ternary_tile_params"]

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
}

#: kernel → where its cycles and counts come from
SOURCES = {
    "ternary_mvu": "golden: hwsim.golden.ternary_mvu (stream_cycles, action_counts)",
    "int8_matmul": "INTERIM: hwsim.estimate.interim_attention.int8_matmul",
    "softmax_int": "INTERIM: hwsim.estimate.interim_attention.softmax_int",
    "rmsnorm_int": "INTERIM: hwsim.estimate.interim_attention.rmsnorm_int",
}
#: kernel → the core that runs it
CORES = {"ternary_mvu": "tint", "int8_matmul": "booth", "softmax_int": "nonlinear",
         "rmsnorm_int": "nonlinear"}


@dataclass(frozen=True)
class KernelCost:
    kernel: str
    core: str
    cycles: int
    actions: dict[str, int]


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def ternary_tile_params(rows: int, cols: int, lanes: int) -> _tmvu.TernaryMvuParams:
    """The MVU tile for ``rows`` × ``cols`` (columns zero-padded to a multiple of lanes)."""
    return _tmvu.TernaryMvuParams(lanes=lanes, rows=rows, cols=_ceil(cols, lanes) * lanes)


def _ternary(shape: dict, vectors: int, arch) -> KernelCost:
    rows, cols = shape["rows"], shape["cols"]
    tiles, lanes = arch["tint.tiles"], arch["tint.lanes"]
    used = min(tiles, rows)
    hi = _ceil(rows, used)               # rows of the busiest tile
    n_hi = rows - (hi - 1) * used        # tiles with `hi` rows; the others have hi - 1
    p_hi = ternary_tile_params(hi, cols, lanes)
    actions = {k: n_hi * v for k, v in _tmvu.action_counts(p_hi, vectors).items()}
    if n_hi < used:
        p_lo = ternary_tile_params(hi - 1, cols, lanes)
        for k, v in _tmvu.action_counts(p_lo, vectors).items():
            actions[k] += (used - n_hi) * v
    actions.pop("cycles")
    return KernelCost("ternary_mvu", "tint", _tmvu.stream_cycles(p_hi, vectors), actions)


def _int8_matmul(shape: dict, vectors: int, arch) -> KernelCost:
    cycles, actions = _interim.int8_matmul(shape["m"] * vectors, shape["k"], shape["n"],
                                           arch["booth.lanes"])
    return KernelCost("int8_matmul", "booth", cycles, actions)


def _softmax(shape: dict, vectors: int, arch) -> KernelCost:
    cycles, actions = _interim.softmax_int(shape["rows"] * vectors, shape["length"],
                                           arch["nonlinear.lanes"])
    return KernelCost("softmax_int", "nonlinear", cycles, actions)


def _rmsnorm(shape: dict, vectors: int, arch) -> KernelCost:
    cycles, actions = _interim.rmsnorm_int(vectors, shape["length"], arch["nonlinear.lanes"])
    return KernelCost("rmsnorm_int", "nonlinear", cycles, actions)


_ADAPTERS = {"ternary_mvu": _ternary, "int8_matmul": _int8_matmul, "softmax_int": _softmax,
             "rmsnorm_int": _rmsnorm}


def cost(kernel: str, shape: dict, vectors: int, arch) -> KernelCost:
    """Cycles and actions of ``vectors`` inputs through ``kernel`` of ``shape`` on ``arch``."""
    return _ADAPTERS[kernel](shape, vectors, arch)
