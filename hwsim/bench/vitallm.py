"""VitaLLM figures: the accuracy cost of predictive sparse attention on BitNet-tiny, and the
decode-step cycles and KV traffic of one layer, dense vs sparse, from the golden formulas.

Accuracy: the integer golden model (:func:`models.bitnet.integer_model.integer_forward`) with
:func:`hwsim.golden.vitallm.bitnet_layer.sparse_attend` in every layer — each query row that sees
``L`` tokens keeps ``ceil(L·K/M)`` of them by the leading-one surrogate and top-K, then exact
int8 attention — against the same model with dense attention (``K = M``): validation
perplexity of its real-valued logits and greedy next-token agreement.

Hardware: :func:`hwsim.golden.vitallm.decoder_layer.decode_cycles` and ``kv_read_bytes`` of the
decoder-layer accelerator holding one BitNet-tiny layer, a decode step attending to ``M``
cached tokens; beside them the estimator's KV traffic for the same workload (it imports the
same formula) and its BitNet b1.58 3B decode rate on the VitaLLM target.
"""

from __future__ import annotations

import math
from pathlib import Path

from hwsim.bench._bitnet_args import add_checkpoint_arguments

DESCRIPTION = ("VitaLLM predictive sparse attention on BitNet-tiny: validation perplexity and "
               "greedy agreement vs dense for K/M in {1/16 … 1}; one layer's decode-step cycles "
               "and KV bytes read, dense vs sparse; the estimator's VitaLLM target on the same "
               "counts")


def _int_list(text: str) -> list[int]:
    from hwsim.errors import HwsimError

    try:
        return [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise HwsimError(f"--keep takes comma-separated integers, not {text!r}") from None


def add_arguments(p) -> None:
    add_checkpoint_arguments(p, steps=300, windows=32, windows_for="perplexity and agreement")
    p.add_argument("--tokens", type=int, default=128,
                   help="cached tokens M of the decode step (the validation windows' length)")
    p.add_argument("--keep", type=str, default=None,
                   help="comma-separated K values (default: M/16, M/8, M/4, M/2, M)")
    p.add_argument("--weight-kib", type=int, default=64, help="on-chip weight memory (KiB)")
    p.add_argument("--kv-kib", type=int, default=48, help="on-chip KV-cache memory (KiB)")
    p.add_argument("--est-context", type=int, default=128,
                   help="decode context of the BitNet b1.58 3B estimate on VitaLLM")
    p.add_argument("--rtl", action="store_true",
                   help="also run one real decode step of a whole layer (layer --rtl-layer, "
                        "M = --tokens, K = --rtl-keep: the attention half with sparse "
                        "attention, the FFN, both residual adds) on the decoder-layer RTL "
                        "under cocotb on Icarus and Verilator (minutes)")
    p.add_argument("--rtl-keep", type=int, default=16, help="K for --rtl and --rtl-model")
    p.add_argument("--rtl-generate", type=int, default=0, metavar="N",
                   help="also generate N greedy tokens after --rtl-prompt real tokens on the "
                        "decode-model RTL under cocotb on --rtl-sim: every token and every "
                        "layer's keys and values against the integer model, cycles against "
                        "the formula (minutes)")
    p.add_argument("--rtl-prompt", type=int, default=4, help="prompt tokens for --rtl-generate")
    p.add_argument("--rtl-sim", choices=("icarus", "verilator"), default="verilator",
                   help="simulator of --rtl-generate")
    p.add_argument("--rtl-model", action="store_true",
                   help="also run one real decode token of the whole model (every layer on the "
                        "time-multiplexed decoder layer, then the LM head: the greedy token) on "
                        "the decode-model RTL under cocotb on Icarus (minutes)")
    p.add_argument("--lanes", type=int, default=None,
                   help="lanes of the decode-model RTL of --rtl-model and --rtl-generate "
                        "(ternary weights and attention products per cycle; must divide the "
                        "hidden size, the FFN width and the head dimension; default: the "
                        "largest of them up to 16)")
    p.add_argument("--dram-bytes-per-cycle", type=int, default=16,
                   help="DRAM bandwidth (bytes per cycle, default 16: a 128-bit AXI4 bus at one "
                        "beat a cycle) of the weight-streaming bound that --rtl-model and "
                        "--rtl-generate compare their cycles per token with")


def decode_step_case(im, tokens, layer: int, keep: int) -> tuple[object, dict, dict]:
    """The attention phase of the decode step of the last of ``tokens`` (M of them) in decoder
    ``layer`` of the integer model ``im`` running sparse attention at K/M in every layer:
    ``(DecodeAttentionParams, stimulus case, what the integer model computed)``."""
    import numpy as np

    from hwsim.errors import HwsimError
    from hwsim.golden.vitallm import bitnet_layer as bl
    from hwsim.golden.vitallm import decode_attention as gda
    from hwsim.kernels.decode_attention import arrays
    from models.bitnet.integer_model import integer_forward

    M = int(np.size(tokens))
    if not 0 <= layer < len(im.layers):
        raise HwsimError(f"--rtl-layer {layer} does not exist ({len(im.layers)} layers)")
    p = gda.DecodeAttentionParams(heads=im.heads, kv_heads=im.kv_heads, head_dim=im.head_dim,
                                  tokens=M, keep=keep, lanes=min(16, im.head_dim),
                                  exp_lanes=4, score_frac=im.attn.score.frac)
    cap: dict = {}
    integer_forward(im, tokens, capture=cap, attend=bl.sparse_attend(keep / M))
    c = cap[layer]
    a = arrays(c["q"][-1], c["k"].transpose(1, 0, 2), c["v"].transpose(1, 0, 2),
               im.layers[layer].score_mult)
    return p, {"name": f"layer{layer}_M{M}_K{keep}", "arrays": a}, \
        {"o": c["o"][-1], "amax": c["amax"][-1]}


def frontend_step_case(im, tokens, layer: int, keep: int) -> tuple:
    """The q/k/v front end of the same decode step as :func:`decode_step_case`: its int8
    activations (the layer's RMSNorm + activation quantizer of the token's residual row) →
    ``(QkvFrontendParams, stimulus case, the integer model's q, k, v codes)``."""
    import numpy as np

    from hwsim.golden.vitallm import bitnet_layer as bl
    from hwsim.golden.vitallm import layer_codes as lc
    from hwsim.golden.vitallm import qkv_frontend as gqf
    from models.bitnet.integer_model import integer_forward

    M = int(np.size(tokens))
    cap: dict = {}
    integer_forward(im, tokens, capture=cap, attend=bl.sparse_attend(keep / M))
    c, L = cap[layer], im.layers[layer]
    a, amax = lc.act_quant(lc.rms_rows(c["x_in"][-1:], L.attn_norm))
    p = gqf.QkvFrontendParams(hidden=a.shape[1], heads=im.heads, kv_heads=im.kv_heads,
                              head_dim=im.head_dim, lanes=16)
    mults = np.array(L.qkv_mult["q"] + L.qkv_mult["k"] + L.qkv_mult["v"], dtype=np.int64)
    arrays = {**{n: L.proj[n].W for n in ("wq", "wk", "wv")}, "a": a[0], "amax": int(amax[0]),
              "cos": im.cos[M - 1], "sin": im.sin[M - 1], "mults": mults}
    want = np.concatenate([c["q"][-1].ravel(), c["k"][-1].ravel(), c["v"][-1].ravel()])
    return p, {"name": f"layer{layer}_pos{M - 1}", "arrays": arrays}, want


def step_case(im, tokens, layer: int, keep: int) -> tuple:
    """The whole attention block of the decode step of the last of ``tokens``: the front end's
    arrays, the cache of the earlier ``M − 1`` tokens and the heads' score scales →
    ``(DecodeStepParams, stimulus case, the integer model's o and amax as checker words)``."""
    import numpy as np

    from hwsim.golden.vitallm import decode_step as gds
    fp, fcase, _ = frontend_step_case(im, tokens, layer, keep)
    dp, dcase, model = decode_step_case(im, tokens, layer, keep)
    p = gds.DecodeStepParams(hidden=fp.hidden, heads=dp.heads, kv_heads=dp.kv_heads,
                             head_dim=dp.head_dim, tokens=dp.tokens, keep=keep,
                             lanes=fp.lanes, exp_lanes=dp.exp_lanes, score_frac=dp.score_frac)
    da = dcase["arrays"]
    arrays = {**fcase["arrays"], "K": da["K"][:, :-1], "V": da["V"][:, :-1],
              "score_mults": da["mults"]}
    want = np.concatenate([np.append(model["o"][h], model["amax"][h]) for h in range(p.heads)])
    return p, {"name": fcase["name"], "arrays": arrays}, want


def rtl_decode_step(im, tokens, layer: int, keep: int, build: Path,
                    sims=("icarus", "verilator")) -> dict:
    """:func:`step_case` on the ``decode-step`` RTL (ternary q/k/v, RoPE, static int8, KV
    append, LO top-K + int8 attention) under cocotb: outputs ``==`` golden and the golden
    ``==`` the integer model's own attention outputs, cycles ``==`` formula."""
    import numpy as np

    from hwsim.golden.vitallm import decode_attention as gda
    from hwsim.golden.vitallm import decode_step as gds
    from hwsim.golden.vitallm import qkv_frontend as gqf
    from hwsim.kernels import get_kernel
    from hwsim.kernels.decode_step import golden_words
    from hwsim.sim.runner import simulate

    p, case, model = step_case(im, tokens, layer, keep)
    same = bool(np.array_equal(golden_words(p, case["arrays"]), model))
    runs = []
    for sim in sims:
        rep = simulate(get_kernel("decode-step"), p, [case], Path(build) / sim, sim=sim)
        c = rep.cases[0] if rep.cases else {}
        runs.append({"kernel": "decode-step", "sim": sim, "passed": rep.passed,
                     "bit_exact": bool(c.get("bit_exact")), "cycles": c.get("cycles"),
                     "formula_cycles": gds.decode_step_cycles(p),
                     "frontend_cycles": gqf.qkv_frontend_cycles(p.frontend()),
                     "attention_cycles": gda.decode_attention_cycles(p.attention_phase()),
                     "build_s": rep.build_s, "test_s": rep.test_s,
                     "sim_cycles_per_s": rep.cycles_per_s, "failures": rep.failures})
    return {"layer": layer, "tokens": p.tokens, "keep": keep, "heads": p.heads,
            "kv_heads": p.kv_heads, "head_dim": p.head_dim, "hidden": p.hidden,
            "lanes": p.lanes, "golden_equals_integer_model": same, "runs": runs,
            "all_bit_exact": same and all(r["passed"] and r["bit_exact"] for r in runs)}


def _token_captures(im, tokens, keep: int) -> dict:
    """The integer model's captures of a forward pass over ``tokens`` with sparse attention
    keeping ``keep`` of ``len(tokens)`` (the last token is the decode token replayed)."""
    import numpy as np

    from hwsim.golden.vitallm import bitnet_layer as bl
    from models.bitnet.integer_model import integer_forward

    cap: dict = {}
    integer_forward(im, tokens, capture=cap, attend=bl.sparse_attend(keep / int(np.size(tokens))))
    return cap


def _rtl_token(kernel: str, spec, p, case: dict, same: bool, build: Path, sims,
               **extra) -> dict:
    """Simulate one real-token ``case`` of ``kernel`` on each of ``sims`` under cocotb; the
    report of the ``rtl_*`` functions below (``spec`` is the kernel's golden module: its
    ``latency_cycles`` and ``phase_cycles`` are the formula). ``same``: the golden equals the
    integer model; ``extra``: kernel-specific fields of the report."""
    import dataclasses

    from hwsim.kernels import get_kernel
    from hwsim.sim.runner import simulate

    runs = []
    for sim in sims:
        rep = simulate(get_kernel(kernel), p, [case],
                       Path(build) / f"{kernel.replace('-', '_')}_{sim}", sim=sim)
        c = rep.cases[0] if rep.cases else {}
        runs.append({"kernel": kernel, "sim": sim, "passed": rep.passed,
                     "bit_exact": bool(c.get("bit_exact")), "cycles": c.get("cycles"),
                     "formula_cycles": spec.latency_cycles(p),
                     **({"phases": spec.phase_cycles(p)} if hasattr(spec, "phase_cycles")
                        else {}),
                     "sim_cycles": c.get("sim_cycles"), "build_s": rep.build_s,
                     "test_s": rep.test_s, "sim_cycles_per_s": rep.cycles_per_s,
                     "failures": rep.failures})
    return {"hidden": p.hidden, "lanes": p.lanes, "params": dataclasses.asdict(p), **extra,
            "golden_equals_integer_model": same, "runs": runs,
            "all_bit_exact": same and all(r["passed"] and r["bit_exact"] for r in runs)}


def rtl_attn_out(im, tokens, layer: int, keep: int, build: Path,
                 sims=("icarus", "verilator")) -> dict:
    """The same decode step's attention output path (the heads' outputs of
    :func:`decode_step_case`, v-rescale, attention SubLN + quantizer, ``wo``, residual add) on
    the ``attn-out`` RTL under cocotb: residual codes ``==`` golden and the golden ``==`` the
    integer model's residual row after the attention block, cycles ``==`` formula."""
    import numpy as np

    from hwsim.golden.vitallm import attn_out as ao
    from hwsim.kernels.attn_out import golden_words, real_case

    p, case, model = real_case(im, _token_captures(im, tokens, keep), layer, keep)
    same = bool(np.array_equal(golden_words(p, case["arrays"]), model))
    return _rtl_token("attn-out", ao, p, case, same, build, sims, layer=layer,
                      tokens=int(np.size(tokens)), keep=keep)


def rtl_attn_layer(im, tokens, layer: int, keep: int, build: Path,
                   sims=("icarus", "verilator")) -> dict:
    """The same decode step's whole attention half (the token's residual row → peak → shift,
    RMSNorm + quantizer, decode step, output path) on the ``attn-layer`` RTL under cocotb:
    residual codes ``==`` golden and the golden ``==`` the integer model's ``x_attn``, cycles
    ``==`` formula."""
    import numpy as np

    from hwsim.golden.vitallm import attn_layer as al
    from hwsim.kernels.attn_layer import golden_words, real_case

    p, case, model = real_case(im, _token_captures(im, tokens, keep), layer, keep)
    same = bool(np.array_equal(golden_words(p, case["arrays"]), model))
    return _rtl_token("attn-layer", al, p, case, same, build, sims, layer=layer,
                      tokens=int(np.size(tokens)), keep=keep)


def rtl_ffn_in(im, tokens, layer: int, keep: int, build: Path,
               sims=("icarus", "verilator")) -> dict:
    """The same decode step's FFN input half (the token's ``x_attn`` row → peak → shift, FFN
    RMSNorm + quantizer, ``w1`` and ``w3``, ``relu(g)²·u``) on the ``ffn-in`` RTL under
    cocotb: prod codes, amax and the passed-through residual codes ``==`` golden and the
    golden ``==`` the integer model's ``prod`` row and FFN amax, cycles ``==`` formula.
    ``prod_peak_bits``: the bit length of the row's largest ``|prod|`` (against the kernel's
    signed ``prod_width``)."""
    import numpy as np

    from hwsim.golden.vitallm import ffn_in as fi
    from hwsim.kernels.ffn_in import golden_words, real_case

    p, case, (prod, amax) = real_case(im, _token_captures(im, tokens, keep), layer)
    want = np.concatenate([prod, np.full(p.ffn, amax), np.ravel(case["arrays"]["x"])])
    same = bool(np.array_equal(golden_words(p, case["arrays"]), want))
    return _rtl_token("ffn-in", fi, p, case, same, build, sims, layer=layer,
                      tokens=int(np.size(tokens)), keep=keep, ffn=p.ffn, amax=int(amax),
                      prod_peak_bits=int(np.abs(prod).max()).bit_length(),
                      prod_width=p.prod_width)


def rtl_ffn_out(im, tokens, layer: int, keep: int, build: Path,
                sims=("icarus", "verilator")) -> dict:
    """The same decode step's FFN output half (the token's ``prod`` row and FFN amax → peak →
    shift, the wide ε divider, SubLN + quantizer, ``w2``, residual add into ``x_attn``) on the
    ``ffn-out`` RTL under cocotb: residual codes ``==`` golden and the golden ``==`` the
    integer model's output row ``x_out``, cycles ``==`` formula."""
    import numpy as np

    from hwsim.golden.vitallm import ffn_out as fo
    from hwsim.kernels.ffn_out import golden_words, real_case

    p, case, model = real_case(im, _token_captures(im, tokens, keep), layer)
    same = bool(np.array_equal(golden_words(p, case["arrays"]), model))
    return _rtl_token("ffn-out", fo, p, case, same, build, sims, layer=layer,
                      tokens=int(np.size(tokens)), keep=keep, ffn=p.ffn)


def rtl_decoder_layer(im, tokens, layer: int, keep: int, build: Path,
                      sims=("icarus", "verilator")) -> dict:
    """The same decode step's whole layer (the token's residual row → attention half →
    repacker → FFN input half → FFN output half) on the ``decoder-layer`` RTL under cocotb:
    the output residual codes ``==`` golden and the golden ``==`` the integer model's
    ``x_out``, cycles ``==`` formula."""
    import numpy as np

    from hwsim.golden.vitallm import decoder_layer as dl
    from hwsim.kernels.decoder_layer import golden_words, real_case

    p, case, model = real_case(im, _token_captures(im, tokens, keep), layer, keep)
    same = bool(np.array_equal(golden_words(p, case["arrays"]), model))
    return _rtl_token("decoder-layer", dl, p, case, same, build, sims, layer=layer,
                      tokens=int(np.size(tokens)), keep=keep, ffn=p.ffn)


def rtl_decode_model(im, tokens, keep: int, build: Path, sims=("icarus",),
                     dram_bytes_per_cycle: int = 16, lanes: int | None = None) -> dict:
    """The decode token after ``tokens`` through the whole model on the ``decode-model`` RTL
    under cocotb: every layer (weights, KV cache of the earlier tokens and parameters loaded
    per layer), the final norm, the LM head and the greedy token; token and logit ``==``
    golden, the golden's token ``==`` the integer model's argmax, cycles ``==`` formula; the
    token's off-chip bytes and their streaming bound at ``dram_bytes_per_cycle``; ``lanes``
    the design's (default: the decoder layer's)."""
    import dataclasses

    import numpy as np

    from hwsim.golden.vitallm import bitnet_layer as bl
    from hwsim.golden.vitallm import decode_model as dm
    from hwsim.kernels.decode_model import golden_words, real_case
    from models.bitnet.integer_model import integer_forward

    cap: dict = {}
    logits = integer_forward(im, tokens, capture=cap,
                             attend=bl.sparse_attend(keep / int(np.size(tokens))))
    p, case = real_case(im, cap, keep)
    if lanes is not None:
        p = dataclasses.replace(p, lanes=lanes)
    tok, logit = (int(v) for v in golden_words(p, case["arrays"]))
    same = tok == int(np.argmax(logits[-1])) and logit == int(logits[-1].max())
    est = estimator_cycles(p, dram_bytes_per_cycle, int(np.size(tokens)), 1)
    return _rtl_token("decode-model", dm, p, case, same, build, sims,
                      tokens=int(np.size(tokens)), keep=keep, layers=p.layers, vocab=p.vocab,
                      token=tok, load_beats=dm.load_beats(p), dram_bytes=dm.dram_bytes(p),
                      dram_bytes_per_cycle=dram_bytes_per_cycle,
                      stream_bound_cycles=dm.stream_bound_cycles(p, dram_bytes_per_cycle),
                      est_cycles_per_token=est["est_cycles_per_token"])


def rtl_generate(im, prompt, new_tokens: int, keep: int, build: Path, sim: str,
                 dram_bytes_per_cycle: int = 16, lanes: int | None = None) -> dict:
    """Greedy generation of ``new_tokens`` after ``prompt`` on the ``decode-model`` RTL under
    cocotb (:func:`hwsim.sim.generate.generate_cocotb`): the prompt's steps (``prefill``, the
    last one gives the first new token) and one decode step per further token, each one token
    against the caches the design's own ``kv_new`` rows built. Per decode token (the mean over
    the decode steps): its off-chip bytes and their streaming bound at
    ``dram_bytes_per_cycle``."""
    import numpy as np

    from hwsim.golden.vitallm import decode_model as dm
    from hwsim.sim.generate import generate_cocotb, generation_case

    prompt = [int(t) for t in np.ravel(prompt)]
    p, _ = generation_case(im, prompt, new_tokens, keep, lanes)
    rep = generate_cocotb(im, prompt, new_tokens, keep, Path(build) / f"generate_{sim}", sim,
                          lanes)
    c = rep.cases[0] if rep.cases else {}
    P, steps = len(prompt), len(prompt) + new_tokens - 1
    cyc = c.get("step_cycles", [])
    formula = [dm.latency_cycles(p, t + 1) for t in range(steps)]
    decode = cyc[P:]
    est_decode = _mean([estimator_cycles(p, dram_bytes_per_cycle, t + 1, P)["est_cycles_per_token"]
                        for t in range(P, steps)])
    return {"sim": sim, "passed": rep.passed, "bit_exact": bool(c.get("bit_exact")),
            "est_cycles_per_token": est_decode,
            "est_prefill_cycles": estimator_cycles(p, dram_bytes_per_cycle, P, P)[
                "est_prefill_cycles"],
            "prompt": prompt, "tokens": c.get("tokens"), "generated": (c.get("tokens") or [])[P - 1:],
            "capacity": p.tokens, "keep": p.keep, "layers": p.layers,
            "dram_bytes_per_cycle": dram_bytes_per_cycle,
            "dram_bytes_per_token": _mean([dm.dram_bytes(p, t + 1)["total"]
                                           for t in range(P, steps)]),
            "stream_bound_cycles_per_token": _mean([
                dm.stream_bound_cycles(p, dram_bytes_per_cycle, t + 1) for t in range(P, steps)]),
            "step_cycles": cyc, "formula_step_cycles": formula,
            "prefill_cycles": sum(cyc[:P]), "formula_prefill_cycles": sum(formula[:P]),
            "decode_cycles_per_token": sum(decode) / len(decode) if decode else None,
            "formula_decode_cycles_per_token": (sum(formula[P:]) / (steps - P)
                                                if steps > P else None),
            "build_s": rep.build_s, "test_s": rep.test_s, "sim_cycles_per_s": rep.cycles_per_s,
            "failures": rep.failures}


def estimator_cycles(p, dram_bytes_per_cycle: int, context: int, prompt: int) -> dict:
    """The estimator's cycles for BitNet-tiny on the ``decode-model`` RTL's micro-architecture
    (``p`` its :class:`~hwsim.golden.vitallm.decode_model.DecodeModelParams`): VitaLLM's
    description with one TINT tile of ``lanes`` lanes, ``lanes`` Booth lanes, ``exp_lanes``
    nonlinear lanes, no overlapped schedule (the RTL runs its phases in turn) and a DRAM of
    ``dram_bytes_per_cycle``. The estimator streams weights double-buffered (a layer costs
    the larger of its compute and its traffic); the RTL loads a layer, then runs it — the two
    figures side by side show what overlapping would gain, not an error of either."""
    from hwsim.estimate.arch import load_arch
    from hwsim.estimate.engine import PATTERNS
    from hwsim.estimate.estimate import estimate_arch
    from hwsim.estimate.workload import model_workloads

    arch = load_arch("vitallm")
    arch = arch.with_values({
        "tint.tiles": 1, "tint.lanes": p.lanes, "booth.lanes": p.lanes,
        "nonlinear.lanes": p.exp_lanes, "schedule.hide_nonlinear": False,
        "schedule.overlap_attention": False,
        # the cocotb memory model serves its bytes per cycle whatever the access pattern
        "dram.peak_bandwidth": 8.0 * dram_bytes_per_cycle * arch["clock"],
        **{f"dram.efficiency.{p}": 1.0 for p in PATTERNS}},
        source="the decode-model RTL's configuration")
    wl = model_workloads("bitnet-tiny", prompt, context, lm_head=True, keep=p.keep)
    e = estimate_arch("bitnet-tiny", arch, None, prompt, context, lm_head=True, workloads=wl)
    return {"est_cycles_per_token": e.decode.cycles / e.decode.tokens,
            "est_prefill_cycles": e.prefill.cycles}


def _mean(xs: list) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _accelerator(args, cfg) -> tuple[int, list]:
    """Validate the shape and every K before any work: (M, [DecoderLayerParams per K])."""
    from hwsim.errors import HwsimError
    from hwsim.golden.vitallm.decoder_layer import DecoderLayerParams

    M = args.tokens
    keeps = _int_list(args.keep) if args.keep is not None else \
        [max(1, M // 16), max(1, M // 8), max(1, M // 4), max(1, M // 2), M]
    if not keeps:
        raise HwsimError("--keep lists no K value")
    if M not in keeps:
        keeps.append(M)  # the dense reference
    ps = [DecoderLayerParams(ffn=cfg.ffn, heads=cfg.heads, kv_heads=cfg.kv_heads,
                             head_dim=cfg.head_dim, max_len=cfg.max_seq, tokens=M, keep=k,
                             weight_kib=args.weight_kib, kv_kib=args.kv_kib)
          for k in sorted(set(keeps))]
    if args.windows < 1 or args.calib_windows < 1:
        raise HwsimError("--windows and --calib-windows must be at least 1")
    if args.rtl and not 0 <= args.rtl_layer < cfg.layers:
        raise HwsimError(f"--rtl-layer {args.rtl_layer} does not exist ({cfg.layers} layers)")
    if args.dram_bytes_per_cycle < 1:
        raise HwsimError(f"--dram-bytes-per-cycle must be at least 1, not "
                         f"{args.dram_bytes_per_cycle}")
    if args.rtl_generate and (args.rtl_generate < 0 or not 1 <= args.rtl_prompt <= M):
        raise HwsimError(f"--rtl-generate must be ≥ 0 and --rtl-prompt 1 … --tokens ({M})")
    if args.rtl or args.rtl_model:
        DecoderLayerParams(ffn=cfg.ffn, heads=cfg.heads, kv_heads=cfg.kv_heads,
                           head_dim=cfg.head_dim, max_len=cfg.max_seq, tokens=M,
                           keep=args.rtl_keep, weight_kib=args.weight_kib, kv_kib=args.kv_kib)
    if args.lanes is not None:
        DecoderLayerParams(ffn=cfg.ffn, heads=cfg.heads, kv_heads=cfg.kv_heads,
                           head_dim=cfg.head_dim, max_len=cfg.max_seq, tokens=M,
                           keep=min(args.rtl_keep, M), lanes=args.lanes)
    return M, ps


def _nll(logits, step, targets):
    import numpy as np

    z = logits.astype(np.float64) * step[:, None]
    z = z - z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=1))
    return float((lse - z[np.arange(targets.size), targets]).sum())


def run(args) -> dict:
    import numpy as np
    import torch

    from hwsim.errors import HwsimError
    from hwsim.estimate.arch import load_arch
    from hwsim.estimate.estimate import estimate_arch
    from hwsim.estimate.workload import model_workloads
    from hwsim.golden.vitallm import bitnet_layer as bl
    from hwsim.golden.vitallm import decoder_layer as dl
    from models.bitnet.checkpoint import load_checkpoint
    from models.bitnet.config import get_config
    from models.bitnet.data import stdlib_corpus, validation_windows
    from models.bitnet.integer_model import attach_datapath, build_integer_model, integer_forward
    from models.bitnet.train import TrainSettings, train_bitnet

    cfg = get_config("tiny")
    M, ps = _accelerator(args, cfg)
    torch.set_num_threads(args.threads)
    corpus = stdlib_corpus()
    ck = args.checkpoints
    trained_here = False
    if not ((ck / "fp" / "meta.json").exists() and (ck / "ternary" / "meta.json").exists()):
        train_bitnet(cfg, corpus, TrainSettings(steps=args.steps, threads=args.threads), ck,
                     progress=False)
        trained_here = True
    tq, tq_meta = load_checkpoint(ck / "ternary")
    if tq_meta.get("corpus", {}).get("sha256_16") != corpus.digest:
        raise HwsimError(f"{ck} was trained on another corpus than this interpreter's stdlib; "
                         "retrain or pass --checkpoints")
    if tq.config.name != cfg.name:
        raise HwsimError(f"{ck} holds {tq.config.name}, the bench needs BitNet-tiny")
    seq = int(tq_meta.get("settings", {}).get("seq", 128))
    rng = np.random.default_rng(0)
    starts = rng.integers(0, corpus.train.size - seq - 1, args.calib_windows)
    calib = np.stack([corpus.train[s:s + seq] for s in starts]).astype(np.int64)
    im = build_integer_model(tq, calib)
    wins = validation_windows(corpus.val, seq, args.windows).astype(np.int64)
    rep = im.heads // im.kv_heads

    dense_arg = {}
    for w in wins:
        dense_arg[w.tobytes()] = integer_forward(im, w[:-1]).argmax(-1)
    # the torch fake-quant model of the same datapath on the same windows (a sanity reference
    # for the integer model's dense perplexity)
    with torch.no_grad():
        lg = attach_datapath(tq, im)(torch.as_tensor(wins[:, :-1])).double()
        torch_nll = torch.nn.functional.cross_entropy(
            lg.reshape(-1, lg.shape[-1]), torch.as_tensor(wins[:, 1:]).reshape(-1)).item()
    arch = load_arch("vitallm")
    rows = []
    for p in ps:
        ratio = p.keep / M
        nll, agree, n = 0.0, 0, 0
        stats: dict = {"masks": []}
        union = bound = visible = 0
        for w in wins:
            stats["masks"] = []
            logits, step = integer_forward(im, w[:-1], attend=bl.sparse_attend(ratio, stats),
                                           with_step=True)
            nll += _nll(logits, step, w[1:])
            agree += int((logits.argmax(-1) == dense_arg[w.tobytes()]).sum())
            n += w.size - 1
            # KV rows a GQA group reads: the union of its query heads' selections, each row
            for li in range(len(im.layers)):
                for g in range(im.kv_heads):
                    ms = stats["masks"][li * im.heads + g * rep: li * im.heads + (g + 1) * rep]
                    union += int(np.logical_or.reduce(ms).sum())
                    vis = np.arange(1, ms[0].shape[0] + 1)
                    kept = np.array([bl.sparse_keep(ratio, int(v)) for v in vis])
                    bound += int(np.minimum(vis, rep * kept).sum())
                    visible += int(vis.sum())
        cyc = dl.decode_cycles(p)
        kv = p.kv_read_bytes()
        wl = model_workloads("bitnet-tiny", 1, M, keep=p.keep)[0]
        est_kv = sum(op.kv_read_bits for op in wl.layers[0].ops if op.name in ("qk", "av")) // 8
        est_lo = sum(op.kv_read_bits for op in wl.layers[0].ops if op.name == "select") // 8
        w3 = model_workloads("bitnet-3b", 64, args.est_context,
                             keep=max(1, round(ratio * args.est_context)))
        e3 = estimate_arch("bitnet-3b", arch, None, 64, args.est_context, workloads=w3).metrics()
        rows.append({
            "keep": p.keep, "tokens": M, "ratio": ratio,
            "ppl": math.exp(nll / n), "greedy_agreement_vs_dense": agree / n,
            "kept_fraction": stats["rows_kept"] / stats["rows_visible"],
            "decode_cycles": cyc["total"], "attention_cycles": cyc["attention"],
            "attention_select_cycles": dl.attention_cycles(p)["select"],
            "attention_exact_cycles": dl.attention_cycles(p)["exact"],
            "kv_read_bytes": kv["sparse"] if p.keep < M else kv["dense"],
            "kv_read_bytes_dense": kv["dense"], "lo_table_bytes": kv["lo_table"] if
            p.keep < M else 0,
            "kv_reduction": 1 - (kv["sparse"] if p.keep < M else kv["dense"]) / kv["dense"],
            "kv_reduction_per_head": kv["per_head_reduction"],
            "kv_rows_measured_over_visible": union / visible,
            "kv_rows_bound_over_visible": bound / visible,
            "estimator_kv_read_bytes": est_kv, "estimator_lo_table_bytes": est_lo,
            "estimator_3b_decode_tokens_per_s": e3["decode_tokens_per_s"],
            "estimator_3b_offchip_mb_per_token": e3["decode_offchip_mb_per_token"],
        })
    dense = rows[-1]
    for r in rows:
        r["decode_speedup_vs_dense"] = dense["decode_cycles"] / r["decode_cycles"]
    p0 = ps[-1]
    rtl = model_rtl = None
    tokens = corpus.val[1000:1000 + M].astype(np.int64)
    if args.rtl:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            rtl = rtl_decoder_layer(im, tokens, args.rtl_layer, args.rtl_keep, args.out or tmp)
    if args.rtl_model:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            model_rtl = rtl_decode_model(im, tokens, args.rtl_keep, args.out or tmp,
                                         dram_bytes_per_cycle=args.dram_bytes_per_cycle,
                                         lanes=args.lanes)
    gen = None
    if args.rtl_generate:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            gen = rtl_generate(im, tokens[:args.rtl_prompt], args.rtl_generate, args.rtl_keep,
                               args.out or tmp, args.rtl_sim,
                               dram_bytes_per_cycle=args.dram_bytes_per_cycle,
                               lanes=args.lanes)
    return {
        **({"rtl_decoder_layer": rtl} if rtl is not None else {}),
        **({"rtl_decode_model": model_rtl, "rtl_tokens": int(model_rtl["all_bit_exact"]),
            "rtl_tokens_equal_golden": model_rtl["all_bit_exact"],
            "sim_cycles_per_token": model_rtl["runs"][0]["cycles"],
            "formula_cycles_per_token": model_rtl["runs"][0]["formula_cycles"],
            "est_cycles_per_token": model_rtl["est_cycles_per_token"],
            **_bound(model_rtl["runs"][0]["cycles"], model_rtl["dram_bytes"]["total"],
                     model_rtl["stream_bound_cycles"], args.dram_bytes_per_cycle)}
           if model_rtl is not None else {}),
        **({"rtl_generate": gen, "rtl_tokens": len(gen["generated"]),
            "rtl_tokens_equal_golden": gen["passed"] and gen["bit_exact"],
            "sim_cycles_per_token": gen["decode_cycles_per_token"],
            "formula_cycles_per_token": gen["formula_decode_cycles_per_token"],
            "sim_prefill_cycles": gen["prefill_cycles"],
            "formula_prefill_cycles": gen["formula_prefill_cycles"],
            "est_cycles_per_token": gen["est_cycles_per_token"],
            "est_prefill_cycles": gen["est_prefill_cycles"],
            **_bound(gen["decode_cycles_per_token"], gen["dram_bytes_per_token"],
                     gen["stream_bound_cycles_per_token"], args.dram_bytes_per_cycle)}
           if gen is not None else {}),
        "config": cfg.name, "checkpoints": str(ck), "trained_in_this_run": trained_here,
        "corpus": corpus.describe(), "windows": int(wins.shape[0]), "seq": seq,
        "positions": int(wins.shape[0] * (wins.shape[1] - 1)),
        "accelerator": {"hidden": p0.hidden, "ffn": p0.ffn, "heads": p0.heads,
                        "kv_heads": p0.kv_heads, "head_dim": p0.head_dim,
                        "max_len": p0.max_len, "lanes": p0.lanes, "exp_lanes": p0.exp_lanes,
                        "weight_bytes": p0.weight_bytes, "weight_kib": p0.weight_kib,
                        "kv_bytes": p0.kv_bytes, "kv_kib": p0.kv_kib},
        "dense_phases": dl.decode_cycles(p0),
        "torch_datapath_ppl": math.exp(torch_nll),
        "est_context": args.est_context, "threads": args.threads,
        "rows": rows,
    }


def _bound(cycles, dram_bytes, bound, bytes_per_cycle: int) -> dict:
    """The bench's top-level traffic fields of one token: its off-chip bytes, the
    weight-streaming bound (bytes ÷ bytes per cycle) and the simulated cycles over it."""
    return {"dram_bytes_per_token": dram_bytes, "weight_stream_bound_cycles_per_token": bound,
            "dram_bytes_per_cycle": bytes_per_cycle,
            "cycles_over_stream_bound": cycles / bound if cycles and bound else None}


def _run_lines(runs: list[dict]) -> list[str]:
    """One table line per simulator run of an ``rtl_*`` report."""
    return [f"  {run['sim']}: {'==' if run['bit_exact'] else '!='} golden, {run['cycles']} "
            f"cycles (formula {run['formula_cycles']}), build {run['build_s']:.0f} s, "
            f"{run['sim_cycles_per_s']:.0f} simulated cycles/s" for run in runs]


def table(r: dict) -> str:
    a = r["accelerator"]
    head = (f"BitNet b1.58 {r['config']} ({r['corpus']['source']}), {r['positions']} validation "
            f"positions; accelerator: {a['heads']} heads × {a['head_dim']} ({a['kv_heads']} KV "
            f"heads), lanes {a['lanes']}, weights {a['weight_bytes']} B in {a['weight_kib']} KiB,"
            f" KV {a['kv_bytes']} B in {a['kv_kib']} KiB")
    cols = ["K/M", "ppl", "agree", "kept", "cycles", "speedup", "attn cyc", "KV B", "KV B dense",
            "KV red.", "per head", "KV meas.", "est KV B", f"3B tok/s @{r['est_context']}"]
    lines = [head, ""]
    body = []
    for x in r["rows"]:
        body.append([f"{x['keep']}/{x['tokens']}", f"{x['ppl']:.3f}",
                     f"{x['greedy_agreement_vs_dense']:.4f}", f"{x['kept_fraction']:.3f}",
                     f"{x['decode_cycles']}", f"{x['decode_speedup_vs_dense']:.3f}×",
                     f"{x['attention_cycles']}", f"{x['kv_read_bytes']}",
                     f"{x['kv_read_bytes_dense']}", f"{x['kv_reduction']:.3f}",
                     f"{x['kv_reduction_per_head']:.3f}",
                     f"{x['kv_rows_measured_over_visible']:.3f}",
                     f"{x['estimator_kv_read_bytes']}",
                     f"{x['estimator_3b_decode_tokens_per_s']:.2f}"])
    w = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(cols)]
    lines.append("  ".join(c.rjust(w[i]) for i, c in enumerate(cols)))
    lines += ["  ".join(v.rjust(w[i]) for i, v in enumerate(b)) for b in body]
    lines += ["", f"dense integer model ppl {r['rows'][-1]['ppl']:.3f} vs its torch fake-quant "
              f"datapath model {r['torch_datapath_ppl']:.3f} on the same windows",
              "agree: greedy next token equal to dense; kept: kept / visible tokens over all "
              "rows (ceil of K/M per row); KV red.: 1 − sparse/dense bytes of one decode step "
              "(GQA bound); per head: 1 − K/M; KV meas.: rows the GQA groups read / visible on "
              "the validation data",
              "dense phases (cycles): " + ", ".join(f"{k} {v}" for k, v in
                                                    r["dense_phases"].items())]
    if "rtl_decoder_layer" in r:
        x = r["rtl_decoder_layer"]
        lines.append(f"decoder-layer RTL on a real decode token, layer {x['layer']}, "
                     f"M={x['tokens']}, K={x['keep']}: golden == integer model x_out: "
                     f"{x['golden_equals_integer_model']}")
        lines += _run_lines(x["runs"])
    if "rtl_generate" in r:
        x = r["rtl_generate"]
        lines.append(f"decode-model RTL generation on {x['sim']}: prompt {x['prompt']} → "
                     f"{x['generated']}, tokens and KV rows == integer model: "
                     f"{x['passed'] and x['bit_exact']}; prefill {x['prefill_cycles']} cycles "
                     f"(formula {x['formula_prefill_cycles']}), decode "
                     f"{x['decode_cycles_per_token']} cycles/token (formula "
                     f"{x['formula_decode_cycles_per_token']})")
    if "rtl_decode_model" in r:
        x = r["rtl_decode_model"]
        lines.append(f"decode-model RTL (all {x['layers']} layers + LM head) on a real decode "
                     f"token, M={x['tokens']}, K={x['keep']}: greedy token {x['token']}, golden "
                     f"== integer model argmax: {x['golden_equals_integer_model']}")
        lines += _run_lines(x["runs"])
    if r.get("weight_stream_bound_cycles_per_token"):
        lines.append(f"off-chip bytes per decode token {r['dram_bytes_per_token']:.0f}; "
                     f"weight-streaming bound {r['weight_stream_bound_cycles_per_token']:.0f} "
                     f"cycles at {r['dram_bytes_per_cycle']} B/cycle; simulated cycles per "
                     f"token {r['cycles_over_stream_bound']:.2f}× the bound")
    if r.get("est_cycles_per_token"):
        pre = (f"; prefill: estimator {r['est_prefill_cycles']:.0f}, simulated "
               f"{r['sim_prefill_cycles']}" if "est_prefill_cycles" in r else "")
        lines.append(f"estimator on the RTL's micro-architecture (1 TINT tile, no overlapped "
                     f"schedule): {r['est_cycles_per_token']:.0f} cycles per decode token, "
                     f"simulated {r['sim_cycles_per_token']:.0f}{pre}")
    return "\n".join(lines)
