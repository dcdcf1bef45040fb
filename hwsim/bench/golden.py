"""Golden-model speed against this CPU's float32 BLAS, kernel by kernel, on BitNet shapes."""

from __future__ import annotations

from hwsim.bench._timing import rate

DESCRIPTION = ("golden kernels (exact integer results) beside numpy float32 on the same shapes: "
               "MACs/s of the ternary projections, the int8 LM head and the attention heads "
               "against float32 GEMM, rows/s of the integer RMSNorm, the layer's norm unit "
               "and the softmax against their float32 forms; each golden kernel also on its "
               "numpy definitions (compiled loops off) and with its products forced to int64 "
               "as well (the path before the exact float GEMMs)")

#: (name, tokens, hidden, ffn, heads, kv_heads, head_dim, vocab): BitNet-tiny and the 700M
#: shapes of arXiv 2402.17764 (one window of tokens per call)
SHAPES = {
    "tiny": (128, 128, 352, 4, 2, 32, 256),
    "700M": (64, 1536, 4096, 16, 16, 96, 32002),
}


def add_arguments(p) -> None:
    p.add_argument("--shapes", nargs="+", choices=sorted(SHAPES), default=sorted(SHAPES),
                   help="model shapes to measure (tokens per call, hidden, ffn, heads …)")
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS threads for both sides (threadpoolctl)")
    p.add_argument("--min-time", type=float, default=0.3,
                   help="seconds each rate is measured over (after one warm-up call)")


def _cases(shape: str, rng):
    """(kernel, what, unit, work, golden(), float32()) of one model shape."""
    import numpy as np

    from hwsim.golden.common import attention_head as ah
    from hwsim.golden.common import softmax_int as sm
    from hwsim.golden.common.int8_matmul import Int8Weights, int8_matmul
    from hwsim.golden.vitallm import layer_codes as lc
    from hwsim.golden.vitallm import norm_quant as nq
    from hwsim.golden.vitallm import rmsnorm_int as rn
    from hwsim.golden.vitallm import ternary_mvu as mvu

    T, D, F, H, KV, hd, V = SHAPES[shape]
    a = rng.integers(-127, 128, (T, D))
    af = a.astype(np.float32)
    cases = []
    for name, rows, cols in (("ffn w1", F, D), ("ffn w2", D, F)):
        W = rng.integers(-1, 2, (rows, cols))
        x = a if cols == D else rng.integers(-127, 128, (T, cols))
        tw, xf, Wf = mvu.TernaryWeights(W), x.astype(np.float32), W.T.astype(np.float32)
        cases.append(("ternary-mvu", f"{name} ({T}×{cols})·({cols}×{rows})", "MAC",
                      T * rows * cols, lambda tw=tw, x=x: mvu.ternary_mvu_acc(tw, x),
                      lambda xf=xf, Wf=Wf: xf @ Wf))
    head = Int8Weights(rng.integers(-127, 128, (V, D)))
    hf = head.b.T.astype(np.float32)
    cases.append(("int8-matmul", f"LM head ({T}×{D})·({D}×{V})", "MAC", T * D * V,
                  lambda: int8_matmul(a, head), lambda: af @ hf))
    p = ah.AttentionParams(head_dim=hd, max_len=T, lanes=1)
    q = rng.integers(-128, 128, (T, H, hd))
    K = rng.integers(-128, 128, (T, KV, hd))
    Vv = rng.integers(-128, 128, (T, KV, hd))
    mults = [(int(rng.integers(1 << 15, 1 << 16)), 22)] * H
    rep = H // KV
    qf = q.transpose(1, 0, 2).astype(np.float32)
    Kf = np.repeat(K.transpose(1, 2, 0), rep, axis=0).astype(np.float32)
    Vf = np.repeat(Vv.transpose(1, 0, 2), rep, axis=0).astype(np.float32)

    def float_attention():
        s = qf @ Kf
        s = np.exp(s - s.max(-1, keepdims=True))
        return (s / s.sum(-1, keepdims=True)) @ Vf

    cases.append(("attention-head", f"causal prefill, {H} heads ({KV} KV) × {T}² × {hd}", "MAC",
                  2 * H * T * T * hd,
                  lambda: ah.attention_heads(q, K, Vv, mults, p, causal=True), float_attention))
    norm = lc.NormCodes(gamma=rng.integers(1 << 16, 1 << 18, D), p=lc.norm_params(D, 1, 17),
                        eps=12345)
    x = rng.integers(-(1 << 21), 1 << 21, (T, D))
    xf = x.astype(np.float32)
    gf = norm.gamma.astype(np.float32)

    def float_rms():
        return xf * gf / np.sqrt((xf * xf).mean(-1, keepdims=True) + 1e-6)

    cases.append(("rmsnorm", f"{T} rows × {D}", "row", T,
                  lambda: rn.rmsnorm_int(x, norm.gamma, 12345, norm.p), float_rms))
    xw = rng.integers(-(1 << 30), 1 << 30, (T, D)) >> rng.integers(0, 12, (T, 1))   # residual rows

    def float_norm_quant():
        xf = xw.astype(np.float32)
        y = xf * gf / np.sqrt((xf * xf).mean(-1, keepdims=True) + 1e-6)
        return np.rint(y * (127 / np.abs(y).max(-1, keepdims=True)))

    cases.append(("norm-quant", f"{T} residual rows × {D} → int8", "row", T,
                  lambda: nq.norm_act_rows(xw, norm), float_norm_quant))
    sp = sm.SoftmaxParams()
    s = rng.integers(-128, 128, (H * T, T))
    sf = s.astype(np.float32) / 16

    def float_softmax():
        e = np.exp(sf - sf.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    cases.append(("softmax", f"{H * T} rows × {T}", "row", H * T,
                  lambda: sm.softmax_int(s, sp), float_softmax))
    return cases


def run(args) -> dict:
    import numpy as np
    from threadpoolctl import threadpool_limits

    from hwsim.errors import HwsimError
    from hwsim.golden.common import exact, jit

    if args.threads < 1:
        raise HwsimError(f"--threads must be at least 1, not {args.threads}")
    if not args.min_time > 0:
        raise HwsimError(f"--min-time must be positive, not {args.min_time}")
    rng = np.random.default_rng(0)
    rows = []
    with threadpool_limits(args.threads):
        for shape in args.shapes:
            for kernel, what, unit, work, golden, ref in _cases(shape, rng):
                g = rate(golden, work, args.min_time)
                f = rate(ref, work, args.min_time)
                with jit.disabled():
                    n = rate(golden, work, args.min_time)
                    with exact.force_int64():
                        i = rate(golden, work, args.min_time)
                rows.append({"shape": shape, "kernel": kernel, "what": what, "unit": unit,
                             "golden_per_s": g, "float32_per_s": f, "golden_numpy_per_s": n,
                             "golden_int64_per_s": i, "golden_over_float32": g / f,
                             "numpy_over_float32": n / f, "int64_over_float32": i / f,
                             "matrix": unit == "MAC"})
    matrix = [r["golden_over_float32"] for r in rows if r["matrix"]]
    return {"threads": args.threads, "rows": rows,
            "min_matrix_golden_over_float32": min(matrix) if matrix else None,
            "goal_matrix_golden_over_float32": 0.5}


def table(r: dict) -> str:
    head = ("shape", "kernel", "work", "golden /s", "float32 /s", "ratio", "numpy ratio",
            "int64 ratio")
    lines = [head]
    for x in r["rows"]:
        lines.append((x["shape"], x["kernel"], x["what"],
                      f"{x['golden_per_s']:.3g} {x['unit']}", f"{x['float32_per_s']:.3g}",
                      f"{x['golden_over_float32']:.2f}×", f"{x['numpy_over_float32']:.2f}×",
                      f"{x['int64_over_float32']:.2f}×"))
    w = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    out = ["  ".join(str(c).ljust(w[i]) for i, c in enumerate(line)) for line in lines]
    m = r["min_matrix_golden_over_float32"]
    out.append(f"slowest matrix kernel: {m:.2f}× of float32 GEMM (goal ≥ "
               f"{r['goal_matrix_golden_over_float32']}), {r['threads']} BLAS thread(s); "
               "'numpy ratio': the kernel with its compiled loops off; 'int64 ratio': and its "
               "products in int64")
    return "\n".join(out)
