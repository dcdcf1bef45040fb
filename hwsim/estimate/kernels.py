"""Adapters: a kernel's cycles and action counts, from its golden module, for one operation.

The estimator never re-derives a kernel's formula: the ternary projection's cycles and counts
are :func:`hwsim.golden.vitallm.ternary_mvu.stream_cycles` and
:func:`~hwsim.golden.vitallm.ternary_mvu.action_counts`
for the tile the architecture instantiates. The int8 QKᵀ/AV engine, the integer softmax and the
integer RMSNorm take theirs from ``hwsim.golden.{int8_matmul,softmax_int,rmsnorm_int}`` when
the checkout has those modules (the ``attention`` branch), and from the clearly marked interim
model :mod:`hwsim.estimate.interim_attention` until then; :data:`SOURCES` says which is in use
and every estimate's JSON carries it. :data:`GOLDEN_ACTIONS` maps each golden action to the
energy-table vocabulary.

Every adapter returns a :class:`KernelCost` in one action vocabulary (the keys of
:data:`ACTIONS`), which :mod:`hwsim.estimate.engine` multiplies by the energy tables.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

from hwsim.golden.vitallm import absmax_barrier as _ab
from hwsim.golden.vitallm import lo_topk as _lo
from hwsim.golden.vitallm import ternary_mvu as _tmvu

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
    "add8": "one 8-bit add or compare",
    "add16": "one 16-bit add or shift",
}

_PKG = {"int8_matmul": "common", "softmax_int": "common", "rmsnorm_int": "vitallm"}


def _source(name: str, what: str) -> str:
    if importlib.util.find_spec(f"hwsim.golden.{_PKG[name]}.{name}") is not None:
        return f"golden: hwsim.golden.{_PKG[name]}.{name} ({what})"
    return f"INTERIM: hwsim.estimate.interim_attention.{name} (golden module not in this checkout)"


#: kernel → where its cycles and counts come from
SOURCES = {
    "ternary_mvu": "golden: hwsim.golden.vitallm.ternary_mvu (stream_cycles, action_counts)",
    "int8_matmul": _source("int8_matmul", "action_counts, dot_cycles"),
    "softmax_int": _source("softmax_int", "action_counts, exp_pass_cycles, recip_cycles"),
    "rmsnorm_int": _source("rmsnorm_int", "action_counts, latency_cycles"),
    "absmax_barrier": "golden: hwsim.golden.vitallm.absmax_barrier (stream_cycles, action_counts)",
    "lo_topk": "golden: hwsim.golden.vitallm.lo_topk (latency_cycles, action_counts)",
}
#: kernel → the core that runs it
CORES = {"ternary_mvu": "tint", "int8_matmul": "booth", "softmax_int": "nonlinear",
         "rmsnorm_int": "nonlinear", "absmax_barrier": "nonlinear", "lo_topk": "booth"}


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


def _golden(name: str):
    """The golden module ``hwsim.golden.<name>`` when this checkout has it, else ``None``."""
    try:
        return importlib.import_module(f"hwsim.golden.{_PKG[name]}.{name}")
    except ModuleNotFoundError:
        return None


_MM, _SM, _RN = _golden("int8_matmul"), _golden("softmax_int"), _golden("rmsnorm_int")

#: golden action → {vocabulary action: multiplicity}, per kernel (what each costs in the tables)
GOLDEN_ACTIONS = {
    "int8_matmul": {
        "mac": {"int8_mul": 1},                 # the 8×8 product (Booth digits inside it)
        "booth_partial_products": {},
        "acc_add": {"acc_add": 1},
        "a_read_bits": {"register_read_bits": 1}, "b_read_bits": {"register_read_bits": 1},
    },
    "softmax_int": {
        "max_compare": {"add8": 1}, "exp_lut_read": {"register_read_bits": 16},
        "exp_shift": {"add16": 1}, "sum_add": {"add32": 1}, "reciprocal": {},
        "recip_iterations": {"add32": 1}, "normalize_mul": {"mul32": 1},
        "score_read_bits": {"register_read_bits": 1}, "exp_write_bits": {"register_read_bits": 1},
        "exp_read_bits": {"register_read_bits": 1},
    },
    "absmax_barrier": {
        "abs_compare": {"add32": 1}, "div_step": {"add32": 1}, "requant_mul": {"mul32": 1},
        "buffer_write_bits": {"out_bits": 1}, "buffer_read_bits": {"out_bits": 1},
        "out_bits": {"register_read_bits": 1},
    },
    "lo_topk": {
        "lo_shift_add": {"add16": 1}, "popcount_bits": {"add8": 1},
        "lo_sram_read_bytes": {"kv_bits": 8},
        # KV traffic is the workload's (kv_read_bits), not an action of the selector
        "kv_read_bytes_sparse": {}, "kv_read_bytes_dense": {},
    },
    "rmsnorm_int": {
        "square_mac": {"int8_mul": 1, "add32": 1}, "isqrt": {"add32": 32},
        "reciprocal": {"add32": 32}, "scale_mul": {"mul32": 1},
        "x_read_bits": {"register_read_bits": 1}, "gamma_read_bits": {"register_read_bits": 1},
        "out_bits": {"out_bits": 1},
    },
}


def _map(kernel: str, golden: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    table = GOLDEN_ACTIONS[kernel]
    for action, n in golden.items():
        if action == "cycles":
            continue
        for target, mult in table[action].items():  # KeyError: a new golden action to map
            out[target] = out.get(target, 0) + mult * n
    return out


def _add(acc: dict, more: dict) -> dict:
    for k, v in more.items():
        acc[k] = acc.get(k, 0) + v
    return acc


def _key_lengths(shape: dict) -> list[tuple[int, int]]:
    """``(keys, queries)`` pairs: every query attends to ``keys`` (one pair, closed form), or
    query ``i`` of a causal prefill to ``i`` keys (one pair per query)."""
    if shape["causal"]:
        return [(n, 1) for n in range(1, shape["queries"] + 1)]
    return [(shape["keys"], shape["queries"])]


def _scaled(actions: dict, k: int) -> dict:
    return {a: k * n for a, n in actions.items()}


def _int8_matmul(shape: dict, vectors: int, arch) -> KernelCost:
    lanes = arch["booth.lanes"]
    if "product" in shape:  # attention: QKᵀ or A·V of every head and query
        h, hd, lengths = shape["heads"], shape["head_dim"], _key_lengths(shape)
        total = sum(n * q for n, q in lengths)
        if _MM is None:
            cycles, actions = _interim.int8_matmul(h, hd, total, lanes)
        elif shape["product"] == "qk":   # (h, d) · (L, d)ᵀ per query: linear in L
            g = _MM.action_counts(h, total, hd, lanes)
            cycles, actions = g["cycles"], _map("int8_matmul", g)
        else:                            # (h, L) · (d, L)ᵀ per query
            cycles, actions = 0, {}
            for n_keys, queries in lengths:
                g = _MM.action_counts(h, hd, n_keys, lanes)
                cycles += queries * g["cycles"]
                _add(actions, _scaled(_map("int8_matmul", g), queries))
        return KernelCost("int8_matmul", "booth", cycles, actions)
    m, k, n = shape["m"] * vectors, shape["k"], shape["n"]  # dense: (m, k) · (k, n)
    if _MM is None:
        cycles, actions = _interim.int8_matmul(m, k, n, lanes)
    else:
        g = _MM.action_counts(m, n, k, lanes)
        cycles, actions = g["cycles"], _map("int8_matmul", g)
    return KernelCost("int8_matmul", "booth", cycles, actions)


def _softmax(shape: dict, vectors: int, arch) -> KernelCost:
    lanes, h, lengths = arch["nonlinear.lanes"], shape["heads"], _key_lengths(shape)
    if _SM is None:
        cycles, actions = _interim.softmax_int(h, sum(n * q for n, q in lengths), lanes)
    else:
        p = _SM.SoftmaxParams()
        cycles, actions = 0, {}
        for n_keys, queries in lengths:
            cycles += queries * h * (_SM.exp_pass_cycles(n_keys, lanes) + _SM.recip_cycles(p))
            _add(actions, _scaled(_map("softmax_int", _SM.action_counts(p, n_keys, h)),
                                  queries))
    return KernelCost("softmax_int", "nonlinear", cycles, actions)


def _rmsnorm(shape: dict, vectors: int, arch) -> KernelCost:
    n, lanes = shape["length"], arch["nonlinear.lanes"]
    if _RN is None:
        cycles, actions = _interim.rmsnorm_int(vectors, n, lanes)
    else:
        # the unit's lanes must divide the vector: the widest that does, up to the arch's
        lanes = max(d for d in range(1, min(lanes, n) + 1) if n % d == 0)
        p = _RN.RmsNormParams(n=n, lanes=lanes)
        cycles = vectors * _RN.latency_cycles(p)
        actions = _map("rmsnorm_int", _RN.action_counts(p, vectors))
    return KernelCost("rmsnorm_int", "nonlinear", cycles, actions)


def _barrier(shape: dict, vectors: int, arch) -> KernelCost:
    p = _ab.AbsmaxBarrierParams(length=shape["length"], in_width=shape["in_width"])
    return KernelCost("absmax_barrier", "nonlinear", _ab.stream_cycles(p, vectors),
                      _map("absmax_barrier", _ab.action_counts(p, vectors)))


def _lo_topk(shape: dict, vectors: int, arch) -> KernelCost:
    """``vectors`` queries (one per head) each selecting ``keep`` of ``tokens`` cached keys."""
    p = _lo.LoTopKParams(tokens=shape["tokens"], head_dim=shape["head_dim"], keep=shape["keep"])
    return KernelCost("lo_topk", "booth", vectors * _lo.latency_cycles(p),
                      _map("lo_topk", _lo.action_counts(p, vectors)))


_ADAPTERS = {"ternary_mvu": _ternary, "int8_matmul": _int8_matmul, "softmax_int": _softmax,
             "rmsnorm_int": _rmsnorm, "absmax_barrier": _barrier,
             "lo_topk": _lo_topk}


def cost(kernel: str, shape: dict, vectors: int, arch) -> KernelCost:
    """Cycles and actions of ``vectors`` inputs through ``kernel`` of ``shape`` on ``arch``."""
    return _ADAPTERS[kernel](shape, vectors, arch)
