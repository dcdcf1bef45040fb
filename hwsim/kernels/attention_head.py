"""Registry entry and stimulus of the attention head kernel."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from hwsim.golden.common import attention_head as spec
from hwsim.golden.common.int8_matmul import fold_scale
from hwsim.golden.common.int8_matmul import int8_matmul as _matmul
from quant.qtype import quantize_multiplier

from . import CliParam, Kernel, _costs
from ._contract import latency, port, timing

_KINDS = {"kv": spec.OP_KV, "q": spec.OP_Q, "clear": spec.OP_CLEAR}




def manifest(p: spec.AttentionParams) -> dict:
    L = p.max_len
    return {
        "kernel": "attention-head",
        "params": {f.name: str(v) if not isinstance(v := getattr(p, f.name), int | str) else v
                   for f in dataclasses.fields(p)},
        "qk_acc_width": p.qk_acc_width,
        "av_acc_width": p.av_acc_width,
        "numeric": {
            "function": "hwsim.golden.common.attention_head.run_ops: per query, acc = q . k_t exact; "
                        "score_t = sat(round(acc * M * 2**-S)) to the score format; p = "
                        "softmax_int(scores) (hwsim.golden.common.softmax_int); o_acc = p . V exact; "
                        "amax = max |o_acc|, (r, k) = reciprocal(amax), "
                        "o = sat(round(o_acc * r * 127 * 2**-k)) to out",
            "op_code": {name: code for name, code in _KINDS.items()},
            "inp_beat": "op kv: a = k chunk, b = v chunk (head_dim/lanes beats, appended to the "
                        "cache); op q: a = q chunk (head_dim/lanes beats, b = 0); op clear: "
                        "one beat, empties the cache",
            "score": {"M": port("score_mult", p.mult_bits, "folded score multiplier "
                                "(s_q * s_k / sqrt(d) / 2**-score.frac, hwsim.golden.common.int8_matmul."
                                "fold_scale), sampled with the last q beat of each query"),
                      "S": port("score_shift", p.shift_bits, "score right shift, sampled with M"),
                      "function": "score = requantize(q . k, M, S) to the score format",
                      "rounding": p.score.rounding.value, "overflow": p.score.overflow.value},
            "rounding": f"score {p.score.rounding.value}, out {p.out.rounding.value}",
            "overflow": f"score {p.score.overflow.value}, out {p.out.overflow.value}",
            "formats": {"score": p.score.to_dict(), "prob": p.prob.to_dict(),
                        "out": p.out.to_dict()},
            "probabilities": "integer softmax of the scores (hwsim.golden.common.softmax_int) in the "
                             "prob format",
            "out_beat": "o: lanes output codes of the context row p . V scaled by 127/amax "
                        "(per-row absmax, integer reciprocal: hwsim.golden.common.attention_head, step "
                        "4); amax: that row's max |p . V|, in every beat",
            "bound": "o equals round(o_acc * 127 / amax) except within 127 * 2**-(recip_bits-1) "
                     "LSB of a rounding tie (+-1 LSB there)",
        },
        "latency": latency(spec.query_cycles, p, L, unit="query at max_len", first="q beat",
                           last="out beat"),
        "interval": timing(spec.query_cycles, p, L, back_to_back=True,
                           meaning="cycles between the first beats of back-to-back queries at "
                                   "max_len: operations run one at a time, a query its latency, "
                                   "a kv head_dim/lanes, a clear 1 (hwsim.golden.common.attention_head."
                                   "stream_cycles)"),
        "cycles": {
            "query_at_max_len": spec.query_cycles(p, L),
            "decode_at_max_len": spec.decode_cycles(p, L),
            "ideal_at_max_len": spec.ideal_cycles(p, L),
        },
    }


def ops_to_arrays(ops, p: spec.AttentionParams) -> dict[str, np.ndarray]:
    """An operation list as integer arrays (``kind``, ``a``, ``b``) for a ``.npz`` plan."""
    n, d = len(ops), p.head_dim
    kind = np.zeros(n, dtype=np.int64)
    a = np.zeros((n, d), dtype=np.int64)
    b = np.zeros((n, d), dtype=np.int64)
    for j, op in enumerate(ops):
        kind[j] = _KINDS[op[0]]
        if op[0] != "clear":
            a[j] = op[1]
        if op[0] == "kv":
            b[j] = op[2]
    return {"kind": kind, "a": a, "b": b}


def arrays_to_ops(arrays: dict) -> list[tuple]:
    names = {v: k for k, v in _KINDS.items()}
    ops = []
    for kind, a, b in zip(arrays["kind"], arrays["a"], arrays["b"], strict=True):
        name = names[int(kind)]
        ops.append(("clear",) if name == "clear" else ("q", a) if name == "q" else ("kv", a, b))
    return ops


def query_scales(arrays: dict) -> list[tuple[int, int]]:
    """Each query's score ``(M, S)``: a case's ``mult``/``shift`` are one value for every query
    or one per ``q`` operation (the RTL samples them with each query's last beat)."""
    nq = int(np.count_nonzero(np.asarray(arrays["kind"]) == spec.OP_Q))
    M = np.broadcast_to(np.asarray(arrays["mult"]), (nq,))
    S = np.broadcast_to(np.asarray(arrays["shift"]), (nq,))
    return [(int(m), int(s)) for m, s in zip(M, S, strict=True)]


def golden(p: spec.AttentionParams, arrays: dict) -> list[tuple[np.ndarray, int]]:
    """The golden ``(o, amax)`` of every query of a case, each with its own score scale."""
    ops = arrays_to_ops(arrays)
    queries = [n for n, op in enumerate(ops) if op[0] == "q"]
    return [spec.run_ops(ops[:n + 1], m, s, p)[-1]
            for n, (m, s) in zip(queries, query_scales(arrays), strict=True)]


def side_values(arrays: dict, p: spec.AttentionParams) -> list[tuple[tuple[str, int], ...]]:
    """Per input beat of :func:`hwsim.golden.common.attention_head.op_words`, the ``score_mult`` /
    ``score_shift`` a host drives with it: its query's on a ``q`` beat, their bitwise complement
    on kv and clear beats (the ports are free there; the next beat waits on the port while a
    query runs), so an RTL that reads the ports after the query's last beat is caught."""
    mm, sm = (1 << p.mult_bits) - 1, (1 << p.shift_bits) - 1
    scales = iter(query_scales(arrays))
    m = s = 0
    out = []
    for op in arrays_to_ops(arrays):
        if op[0] == "q":
            m, s = next(scales)
            out += [(("score_mult", m), ("score_shift", s))] * p.chunks
        else:
            free = (("score_mult", ~m & mm), ("score_shift", ~s & sm))
            out += [free] * (1 if op[0] == "clear" else p.chunks)
    return out


def scale_for(Q, K, mult_bits: int) -> tuple[int, int]:
    """A folded score scale that maps the spread of ``q · k`` onto about ±6 (in real units)."""
    peak = max(float(np.abs(_matmul(Q, K)).max()), 1.0)
    return quantize_multiplier(6.0 * 16 / peak, bits=mult_bits)


def _case(name, ops, M, S, p, **kw) -> dict:
    return {"name": name, "arrays": {**ops_to_arrays(ops, p), "mult": M, "shift": S}, **kw}


def cases(p: spec.AttentionParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """Random decode and prefill, extreme rows, every length, idle input and back-pressure.

    * ``decode``: the cache filled to ``max_len − 1`` tokens, then one decode step;
    * ``prefill_causal``: ``kv_t, q_t`` for every ``t < max_len``: every length 1 … max_len;
    * ``prefill_full``: ``max_len`` tokens, then queries that see them all;
    * ``equal_scores``, ``dominant``, ``all_min``, ``all_max``: all scores equal (a zero query),
      one score far above the rest, q = K = −128 and q = K = 127;
    * ``idle_backpressure``: a short causal prefill with 30 % idle input and 40 % output stalls;
    * ``per_query`` (cycles checked), ``per_query_stall50`` (50 % output stalls) and
      ``per_query_stall90`` (30 % idle input, 90 % output stalls): 4 causal queries
      back to back, each with its own score scale.
    """
    rng = np.random.default_rng(seed)
    d, L = p.head_dim, p.max_len

    def rnd(n):
        return rng.integers(-128, 128, (n, d))

    out = []
    Q, K, V = rnd(1), rnd(L), rnd(L)
    M, S = scale_for(Q, K, p.mult_bits)
    ops = [("clear",), *[("kv", K[t], V[t]) for t in range(L)], ("q", Q[0])]
    out.append(_case("decode", ops, M, S, p))
    if not quick:
        Q, K, V = rnd(L), rnd(L), rnd(L)
        M, S = scale_for(Q, K, p.mult_bits)
        ops = [("clear",), *[op for t in range(L) for op in (("kv", K[t], V[t]), ("q", Q[t]))]]
        out.append(_case("prefill_causal", ops, M, S, p))
        nq = min(L, 3)
        ops = [("clear",), *[("kv", K[t], V[t]) for t in range(L)],
               *[("q", Q[t]) for t in range(nq)]]
        out.append(_case("prefill_full", ops, M, S, p))
        M1, S1 = fold_scale(1 / 128, 1 / 128, 1 / math.sqrt(d), 16, bits=p.mult_bits)
        zero_q = [("clear",), *[("kv", K[t], V[t]) for t in range(L)], ("q", np.zeros(d, int))]
        out.append(_case("equal_scores", zero_q, M1, S1, p))
        Kd = K.copy() // 8
        Kd[L // 2] = Q[0]  # one key aligned with the query: one dominant score
        ops = [("clear",), *[("kv", Kd[t], V[t]) for t in range(L)], ("q", Q[0])]
        out.append(_case("dominant", ops, *scale_for(Q[:1], Kd, p.mult_bits), p))
        for name, v in (("all_min", -128), ("all_max", 127)):
            full = np.full(d, v)
            ops = [("clear",), *[("kv", full, full) for _ in range(L)], ("q", full)]
            out.append(_case(name, ops, M1, S1, p))
    n = min(L, 4)
    Q, K, V = rnd(n), rnd(n), rnd(n)
    M, S = scale_for(Q, K, p.mult_bits)
    ops = [("clear",), *[op for t in range(n) for op in (("kv", K[t], V[t]), ("q", Q[t]))]]
    out.append(_case("idle_backpressure", ops, M, S, p, idle=0.3, stall=0.4, seed=seed + 7))

    def per_query(name, **kw):
        # 4 causal queries (a clear whenever the cache is full), each with its own score scale
        Q, K, V = rnd(4), rnd(4), rnd(4)
        ratios, ops, Ms, Ss = (1.0, 0.25, 3.0, 0.06), [], [], []
        for t in range(4):
            if t % L == 0:
                ops.append(("clear",))
            ops += [("kv", K[t], V[t]), ("q", Q[t])]
            m, s = scale_for(Q[t:t + 1], K[t - t % L:t + 1], p.mult_bits)
            m, s = quantize_multiplier(m * 2.0 ** -s * ratios[t], bits=p.mult_bits)
            Ms.append(m)
            Ss.append(s)
        return _case(name, ops, np.array(Ms), np.array(Ss), p, **kw)

    if not quick:
        out.append(per_query("per_query"))
    out.append(per_query("per_query_stall50", stall=0.5, seed=seed + 11))
    if not quick:
        out.append(per_query("per_query_stall90", idle=0.3, stall=0.9, seed=seed + 13))
    return out


KERNEL = Kernel(
    name="attention-head",
    top="attention_head",
    summary="attention head: KV cache, int8 QKᵀ/A·V engine, integer softmax, absmax int8 output",
    params_cls=spec.AttentionParams,
    cli_params=(
        CliParam("head_dim", int, 64, "elements per q/k/v row (lanes must divide it)"),
        CliParam("max_len", int, 128, "KV-cache capacity in tokens"),
        CliParam("lanes", int, 16, "multipliers of the QKᵀ / A·V engine"),
        CliParam("exp_lanes", int, 4, "exponential units of the softmax"),
        CliParam("multiplier", str, "dsp", "multiplier style: dsp (a*b → DSP48E2) or booth"),
    ),
    component_path="rtl.common.attention_head:AttentionHead",
    testbench="hwsim.sim.tb_attention_head",
    golden="hwsim.golden.common.attention_head:attention_head",
    cycles=lambda p: spec.query_cycles(p, p.max_len),
    actions=lambda p: spec.action_counts(p, p.max_len),
    costs=(_costs.INT8_MATMUL, _costs.SOFTMAX_INT),
    manifest=manifest,
    cases=cases,
    test_params=(dict(head_dim=4, max_len=4, lanes=4, exp_lanes=2),
                 dict(head_dim=3, max_len=3, lanes=1, exp_lanes=1)),
)
