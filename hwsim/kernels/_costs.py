"""The estimator's prices of the operations the registered kernels run (:class:`Cost` entries).

Each entry evaluates its golden module's own cycle formula and action counts for an operation
shape on an architecture — nothing is re-derived here — and maps the golden actions into the
estimator's action vocabulary (:data:`hwsim.estimate.kernels.ACTIONS`, which the energy tables
price). The kernel modules attach these entries to the kernel whose hardware runs them:

* ``ternary_mvu`` (core ``tint``): :func:`hwsim.golden.vitallm.ternary_mvu.stream_cycles` and
  ``action_counts`` of the busiest tile, ``tint.tiles`` tiles of ``tint.lanes`` lanes;
* ``int8_matmul`` (core ``booth``): the attention head's QKᵀ / A·V engine,
  :func:`hwsim.golden.common.int8_matmul.action_counts` on ``booth.lanes`` multipliers;
* ``softmax_int`` (core ``nonlinear``): the attention head's integer softmax,
  :mod:`hwsim.golden.common.softmax_int` on ``nonlinear.lanes`` exponent lanes;
* ``rmsnorm_int``, ``absmax_barrier`` (core ``nonlinear``), ``lo_topk`` (core ``booth``);
* ``silu_mul`` (core ``nonlinear``): the SiLU-gated product of the 1bitLLM FFN,
  :func:`hwsim.golden.vitallm.ffn_in.silu_stream_cycles` and ``silu_action_counts`` on
  ``nonlinear.lanes`` units (the 2B4T ``relu(g)²·u`` is not priced: two multiplies per element
  beside the MVUs).

Operation shapes: ``{"rows", "cols"}`` (ternary projection); ``{"heads", "head_dim",
"queries", "keys", "causal"[, "product": "qk" | "av"]}`` (attention; a causal prefill's query
``i`` attends to ``i`` keys); ``{"m", "k", "n"}`` (a dense int8 product per vector);
``{"length"[, "in_width"]}`` (norm, barrier, SiLU product); ``{"tokens", "head_dim", "keep"}``
(selector).
"""

from __future__ import annotations

from collections.abc import Callable

from hwsim.golden.common import int8_matmul as _mm
from hwsim.golden.common import softmax_int as _sm
from hwsim.golden.vitallm import absmax_barrier as _ab
from hwsim.golden.vitallm import ffn_in as _ffn
from hwsim.golden.vitallm import lo_topk as _lo
from hwsim.golden.vitallm import rmsnorm_int as _rn
from hwsim.golden.vitallm import ternary_mvu as _tmvu

from . import Cost

__all__ = ["ABSMAX_BARRIER", "INT8_MATMUL", "LO_TOPK", "RMSNORM_INT", "SILU_MUL", "SOFTMAX_INT",
           "TERNARY_MVU", "ternary_tile_params"]


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _add(acc: dict, more: dict, k: int = 1) -> dict:
    for a, n in more.items():
        acc[a] = acc.get(a, 0) + k * n
    return acc


def _mapper(table: dict[str, dict[str, int]]) -> Callable[[dict], dict[str, int]]:
    """golden action counts -> vocabulary counts, by ``table`` (golden action -> {vocabulary
    action: multiplicity}); a golden action missing from ``table`` is a KeyError."""
    def mapped(golden: dict[str, int]) -> dict[str, int]:
        out: dict[str, int] = {}
        for action, n in golden.items():
            if action != "cycles":
                _add(out, table[action], n)
        return out
    return mapped


def _priced(core: str, name: str, fn: Callable) -> Cost:
    """A :class:`Cost` from ``fn(shape, vectors, arch) -> (cycles, actions)``."""
    return Cost(name, core, lambda s, v, a: fn(s, v, a)[0], lambda s, v, a: fn(s, v, a)[1])


# ---- ternary projection (tint core) ----------------------------------------------------------
def ternary_tile_params(rows: int, cols: int, lanes: int) -> _tmvu.TernaryMvuParams:
    """The MVU tile for ``rows`` × ``cols`` (columns zero-padded to a multiple of lanes)."""
    return _tmvu.TernaryMvuParams(lanes=lanes, rows=rows, cols=_ceil(cols, lanes) * lanes)


def _ternary(shape: dict, vectors: int, arch) -> tuple[int, dict]:
    rows, cols = shape["rows"], shape["cols"]
    tiles, lanes = arch["tint.tiles"], arch["tint.lanes"]
    used = min(tiles, rows)
    hi = _ceil(rows, used)               # rows of the busiest tile
    n_hi = rows - (hi - 1) * used        # tiles with `hi` rows; the others have hi - 1
    p_hi = ternary_tile_params(hi, cols, lanes)
    actions = _add({}, _tmvu.action_counts(p_hi, vectors), n_hi)
    if n_hi < used:
        _add(actions, _tmvu.action_counts(ternary_tile_params(hi - 1, cols, lanes), vectors),
             used - n_hi)
    actions.pop("cycles")
    return _tmvu.stream_cycles(p_hi, vectors), actions


# ---- attention (booth and nonlinear cores) ---------------------------------------------------
_MATMUL = _mapper({
    "mac": {"int8_mul": 1},                 # the 8×8 product (Booth digits inside it)
    "booth_partial_products": {},
    "acc_add": {"acc_add": 1},
    "a_read_bits": {"register_read_bits": 1}, "b_read_bits": {"register_read_bits": 1},
})
_SOFTMAX = _mapper({
    "max_compare": {"add8": 1}, "exp_lut_read": {"register_read_bits": 16},
    "exp_shift": {"add16": 1}, "sum_add": {"add32": 1}, "reciprocal": {},
    "recip_iterations": {"add32": 1}, "normalize_mul": {"mul32": 1},
    "score_read_bits": {"register_read_bits": 1}, "exp_write_bits": {"register_read_bits": 1},
    "exp_read_bits": {"register_read_bits": 1},
})


def _key_lengths(shape: dict) -> list[tuple[int, int]]:
    """``(keys, queries)`` pairs: every query attends to ``keys`` (one pair, closed form), or
    query ``i`` of a causal prefill to ``i`` keys (one pair per query)."""
    if shape["causal"]:
        return [(n, 1) for n in range(1, shape["queries"] + 1)]
    return [(shape["keys"], shape["queries"])]


def _int8_matmul(shape: dict, vectors: int, arch) -> tuple[int, dict]:
    lanes = arch["booth.lanes"]
    if "product" not in shape:           # dense: (m, k) · (k, n) per vector
        g = _mm.action_counts(shape["m"] * vectors, shape["n"], shape["k"], lanes)
        return g["cycles"], _MATMUL(g)
    h, hd, lengths = shape["heads"], shape["head_dim"], _key_lengths(shape)
    if shape["product"] == "qk":         # (h, d) · (L, d)ᵀ per query: linear in L
        g = _mm.action_counts(h, sum(n * q for n, q in lengths), hd, lanes)
        return g["cycles"], _MATMUL(g)
    cycles, actions = 0, {}              # A·V: (h, L) · (d, L)ᵀ per query
    for n_keys, queries in lengths:
        g = _mm.action_counts(h, hd, n_keys, lanes)
        cycles += queries * g["cycles"]
        _add(actions, _MATMUL(g), queries)
    return cycles, actions


def _softmax(shape: dict, vectors: int, arch) -> tuple[int, dict]:
    lanes, h = arch["nonlinear.lanes"], shape["heads"]
    p = _sm.SoftmaxParams()
    cycles, actions = 0, {}
    for n_keys, queries in _key_lengths(shape):
        cycles += queries * h * (_sm.exp_pass_cycles(n_keys, lanes) + _sm.recip_cycles(p))
        _add(actions, _SOFTMAX(_sm.action_counts(p, n_keys, h)), queries)
    return cycles, actions


# ---- norms, barrier, selector ----------------------------------------------------------------
_RMSNORM = _mapper({
    "square_mac": {"int8_mul": 1, "add32": 1}, "isqrt": {"add32": 32},
    "reciprocal": {"add32": 32}, "scale_mul": {"mul32": 1},
    "x_read_bits": {"register_read_bits": 1}, "gamma_read_bits": {"register_read_bits": 1},
    "out_bits": {"out_bits": 1},
})
_BARRIER = _mapper({
    "abs_compare": {"add32": 1}, "div_step": {"add32": 1}, "requant_mul": {"mul32": 1},
    "buffer_write_bits": {"out_bits": 1}, "buffer_read_bits": {"out_bits": 1},
    "out_bits": {"register_read_bits": 1},
})
_LO_TOPK = _mapper({
    "lo_shift_add": {"add16": 1}, "popcount_bits": {"add8": 1},
    "lo_sram_read_bytes": {"kv_bits": 8},
    # KV traffic is the workload's (kv_read_bits), not an action of the selector
    "kv_read_bytes_sparse": {}, "kv_read_bytes_dense": {},
})


def _rmsnorm(shape: dict, vectors: int, arch) -> tuple[int, dict]:
    n, lanes = shape["length"], arch["nonlinear.lanes"]
    # the unit's lanes must divide the vector: the widest that does, up to the arch's
    lanes = max(d for d in range(1, min(lanes, n) + 1) if n % d == 0)
    p = _rn.RmsNormParams(n=n, lanes=lanes)
    return vectors * _rn.latency_cycles(p), _RMSNORM(_rn.action_counts(p, vectors))


def _barrier(shape: dict, vectors: int, arch) -> tuple[int, dict]:
    p = _ab.AbsmaxBarrierParams(length=shape["length"], in_width=shape["in_width"])
    return _ab.stream_cycles(p, vectors), _BARRIER(_ab.action_counts(p, vectors))


def _lo_topk(shape: dict, vectors: int, arch) -> tuple[int, dict]:
    """``vectors`` queries (one per head) each selecting ``keep`` of ``tokens`` cached keys."""
    p = _lo.LoTopKParams(tokens=shape["tokens"], head_dim=shape["head_dim"], keep=shape["keep"])
    return vectors * _lo.latency_cycles(p), _LO_TOPK(_lo.action_counts(p, vectors))


_SILU = _mapper({"gate_mul": {"mul32": 1}, "table_read_bits": {"register_read_bits": 1},
                 "silu_add": {"add32": 1}, "product_mul": {"mul32": 1}})


def _silu(shape: dict, vectors: int, arch) -> tuple[int, dict]:
    n = shape["length"]
    return (_ffn.silu_stream_cycles(n, arch["nonlinear.lanes"], vectors),
            _SILU(_ffn.silu_action_counts(n, vectors)))


TERNARY_MVU = _priced("tint", "ternary_mvu", _ternary)
INT8_MATMUL = _priced("booth", "int8_matmul", _int8_matmul)
SOFTMAX_INT = _priced("nonlinear", "softmax_int", _softmax)
RMSNORM_INT = _priced("nonlinear", "rmsnorm_int", _rmsnorm)
ABSMAX_BARRIER = _priced("nonlinear", "absmax_barrier", _barrier)
LO_TOPK = _priced("booth", "lo_topk", _lo_topk)
SILU_MUL = _priced("nonlinear", "silu_mul", _silu)
