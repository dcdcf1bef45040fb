"""BitNet b1.58 figures: float vs ternary perplexity, golden-path agreement and speed."""

from __future__ import annotations

from pathlib import Path

from hwsim.bench._bitnet_args import add_checkpoint_arguments
from hwsim.bench._timing import best_rates, rate

DESCRIPTION = ("BitNet b1.58 tiny: validation perplexity of the float baseline and the ternary QAT "
               "model (ratio beside the paper's); greedy next-token agreement of the integer "
               "model on golden kernels with the torch fake-quant model; tokens/s side by side; "
               "hwsim's Hugging Face loader vs transformers' quantized BitNet on a saved random "
               "packed checkpoint")


def add_arguments(p) -> None:
    add_checkpoint_arguments(p, steps=800, windows=64, windows_for="agreement and speed",
                             trained="with the default settings when missing")
    p.add_argument("--rtl", action="store_true",
                   help="also run one decoder layer's real codes through the ternary-mvu and "
                        "attention-head RTL on Icarus (minutes)")
    p.add_argument("--rtl-tokens", type=int, default=4, help="tokens (vectors) for --rtl")


def run(args) -> dict:
    import numpy as np
    import torch
    from threadpoolctl import threadpool_limits

    from hwsim.errors import HwsimError

    if args.threads < 1:
        raise HwsimError(f"--threads must be at least 1, not {args.threads}")
    torch.set_num_threads(args.threads)
    with threadpool_limits(args.threads):          # numpy's BLAS: the same threads as torch
        return _run(args, torch, np)


def _run(args, torch, np) -> dict:
    from hwsim.errors import HwsimError
    from hwsim.golden.common import exact, jit
    from models.bitnet.checkpoint import load_checkpoint
    from models.bitnet.config import get_config
    from models.bitnet.data import stdlib_corpus, validation_windows
    from models.bitnet.integer import GoldenBitLinears, greedy_agreement
    from models.bitnet.integer_model import attach_datapath, build_integer_model, integer_forward
    from models.bitnet.train import TrainSettings, evaluate_ppl, paper_ratios, train_bitnet

    corpus = stdlib_corpus()
    ck = args.checkpoints
    trained_here = False
    if not ((ck / "fp" / "meta.json").exists() and (ck / "ternary" / "meta.json").exists()):
        train_bitnet(get_config("tiny"), corpus, TrainSettings(steps=args.steps,
                                                               threads=args.threads),
                     ck, progress=False)
        trained_here = True
    fp, fp_meta = load_checkpoint(ck / "fp")
    tq, tq_meta = load_checkpoint(ck / "ternary")
    if fp_meta.get("corpus", {}).get("sha256_16") != corpus.digest:
        raise HwsimError(f"{ck} was trained on another corpus than this interpreter's stdlib; "
                         "retrain or pass --checkpoints")
    seq = int(tq_meta.get("settings", {}).get("seq", 128))
    evals = int(tq_meta.get("settings", {}).get("eval_windows", 256))
    fp_ppl = evaluate_ppl(fp, corpus.val, seq, evals)
    tq_ppl = evaluate_ppl(tq, corpus.val, seq, evals)
    win = torch.as_tensor(validation_windows(corpus.val, seq, args.windows)[:, :-1])
    agree = greedy_agreement(tq, win.numpy())
    n_tok = win.numel()

    def torch_fwd():
        with torch.no_grad():
            tq(win)

    def golden_fwd():
        with torch.no_grad(), GoldenBitLinears(tq):
            tq(win)

    # the whole model on golden kernels, integer codes between layers
    rng = np.random.default_rng(0)
    starts = rng.integers(0, corpus.train.size - seq - 1, args.calib_windows)
    calib = np.stack([corpus.train[s:s + seq] for s in starts]).astype(np.int64)
    im = build_integer_model(tq, calib)
    dp = attach_datapath(tq, im)
    with torch.no_grad():
        ref_dp = dp(win).argmax(-1).numpy()
        ref_qat = tq(win).argmax(-1).numpy()
    wins = win.numpy()
    got = integer_forward(im, wins).argmax(-1)          # the batch of windows, as torch runs it
    speed = best_rates({"torch": torch_fwd, "bitlinear": golden_fwd,
                        "integer": lambda: integer_forward(im, wins)}, n_tok, rounds=5)
    torch_tps, golden_tps, integer_tps = speed["torch"], speed["bitlinear"], speed["integer"]
    with jit.disabled():                                # numpy definitions only
        numpy_tps = rate(lambda: integer_forward(im, wins), n_tok, min_s=0.0)
        with exact.force_int64():                       # and the products in int64, as before
            int64_tps = rate(lambda: integer_forward(im, wins), n_tok, min_s=0.0)
    dp_ppl = evaluate_ppl(dp, corpus.val, seq, evals)
    silu = _silu_agreement(corpus, args.threads)
    rtl = _rtl_layer(tq, im, corpus, args) if args.rtl else None
    hf = _transformers(tq.config)
    return {
        **({"rtl": rtl} if rtl is not None else {}),
        "config": tq.config.name, "checkpoints": str(ck), "trained_in_this_run": trained_here,
        "corpus": corpus.describe(), "seq": seq, "eval_windows": evals,
        "fp_ppl": fp_ppl, "ternary_ppl": tq_ppl, "ppl_ratio": tq_ppl / fp_ppl,
        "paper_ppl_ratio": paper_ratios(),
        "datapath_ppl": dp_ppl,
        "greedy_agreement": float((got == ref_dp).mean()),
        "greedy_agreement_vs_qat": float((got == ref_qat).mean()),
        "agreement_positions": int(got.size),
        "golden_bitlinear_agreement": agree["greedy_agreement"],
        "golden_bitlinear_max_abs_logit_diff": agree["max_abs_logit_diff"],
        "torch_tokens_per_s": torch_tps, "golden_integer_tokens_per_s": integer_tps,
        "golden_integer_over_torch": integer_tps / torch_tps,
        "golden_integer_numpy_tokens_per_s": numpy_tps,
        "golden_integer_numpy_over_torch": numpy_tps / torch_tps,
        "golden_integer_int64_tokens_per_s": int64_tps,
        "golden_integer_int64_over_torch": int64_tps / torch_tps,
        "golden_bitlinear_tokens_per_s": golden_tps, "threads": args.threads,
        "integer_model": im.info,
        **hf,
        "silu_model_greedy_agreement": silu["agreement"], "silu_model": silu,
    }


def _transformers(cfg) -> dict:
    """hwsim vs transformers on a random packed checkpoint of the trained model's shape (θ 500 000,
    the 2B4T value), saved into a temporary folder."""
    import dataclasses
    import tempfile

    from models.bitnet.hf_compare import transformers_agreement

    shape = dataclasses.replace(cfg, name="hf-random", rope_theta=500000.0)
    with tempfile.TemporaryDirectory() as tmp:
        return transformers_agreement(shape, Path(tmp) / "ck")


#: the SiLU-form model of the agreement figure: tiny's shape with the 1bitLLM FFN (act silu, no
#: SubLN), trained for a few steps here
SILU_STEPS, SILU_SEQ, SILU_WINDOWS = 60, 64, 16


def _silu_agreement(corpus, threads: int) -> dict:
    """Greedy next-token agreement of the integer model with the torch fake-quant model of its
    datapath, for a SiLU-gated tiny BitNet (1bitLLM form) trained ``SILU_STEPS`` steps."""
    import dataclasses

    import numpy as np
    import torch

    from models.bitnet.config import get_config
    from models.bitnet.data import validation_windows
    from models.bitnet.integer_model import attach_datapath, build_integer_model, integer_forward
    from models.bitnet.train import TrainSettings, train_model

    cfg = dataclasses.replace(get_config("tiny"), name="tiny-silu", act="silu", subln=False)
    s = TrainSettings(steps=SILU_STEPS, batch=8, seq=SILU_SEQ, warmup=10, eval_windows=16,
                      threads=threads)
    model, hist = train_model(cfg, True, corpus, s, progress=False)
    rng = np.random.default_rng(1)
    starts = rng.integers(0, corpus.train.size - SILU_SEQ - 1, 16)
    im = build_integer_model(model, np.stack([corpus.train[i:i + SILU_SEQ] for i in starts])
                             .astype(np.int64))
    win = validation_windows(corpus.val, SILU_SEQ, SILU_WINDOWS)[:, :-1].astype(np.int64)
    with torch.no_grad():
        ref = attach_datapath(model, im)(torch.as_tensor(win)).argmax(-1).numpy()
    got = np.stack([integer_forward(im, w).argmax(-1) for w in win])
    return {"agreement": float((got == ref).mean()), "positions": int(got.size),
            "config": {k: getattr(cfg, k) for k in ("hidden", "ffn", "layers", "act", "subln")},
            "train_steps": SILU_STEPS, "final_train_loss": hist["final_train_loss"],
            "val_ppl": hist["val_ppl"]}


def _rtl_layer(model, im, corpus, args) -> dict:
    """Every projection and every head of one decoder layer on its RTL, real codes, Icarus
    (the same check as the ``sim`` step of ``hwsim run bitnet``)."""
    import tempfile

    import numpy as np

    from hwsim.flow.bitnet import rtl_layer

    tokens = corpus.val[None, 1000:1000 + args.rtl_tokens].astype(np.int64)
    with tempfile.TemporaryDirectory() as tmp:
        return rtl_layer(model, im, tokens, args.rtl_layer, args.out or Path(tmp), "icarus")


def table(r: dict) -> str:
    paper = ", ".join(f"{k} {v:.4f}" for k, v in r["paper_ppl_ratio"].items())
    rows = [
        ("model", f"BitNet b1.58 {r['config']}, {r['corpus']['source']}"),
        ("validation perplexity fp / ternary",
         f"{r['fp_ppl']:.3f} / {r['ternary_ppl']:.3f} ({r['eval_windows']} × {r['seq']} bytes)"),
        ("ternary / fp ratio", f"{r['ppl_ratio']:.4f} (paper: {paper})"),
        ("perplexity, torch model of the integer datapath", f"{r['datapath_ppl']:.3f}"),
        ("greedy agreement integer vs torch datapath",
         f"{r['greedy_agreement']:.4f} of {r['agreement_positions']} positions"),
        ("greedy agreement integer vs QAT (float attn)", f"{r['greedy_agreement_vs_qat']:.4f}"),
        ("greedy agreement golden BitLinears vs QAT", f"{r['golden_bitlinear_agreement']:.4f}"),
        ("greedy agreement integer vs torch datapath, SiLU model",
         f"{r['silu_model_greedy_agreement']:.4f} of {r['silu_model']['positions']} positions "
         f"({r['silu_model']['train_steps']}-step tiny, act silu, no SubLN)"),
        ("tokens/s torch / golden integer",
         f"{r['torch_tokens_per_s']:,.0f} / {r['golden_integer_tokens_per_s']:,.0f} "
         f"({r['golden_integer_over_torch']:.4f}×, {r['threads']} thread)"),
        ("tokens/s golden integer, numpy only (compiled loops off)",
         f"{r['golden_integer_numpy_tokens_per_s']:,.0f} "
         f"({r['golden_integer_numpy_over_torch']:.4f}×)"),
        ("tokens/s golden integer, numpy only, products in int64",
         f"{r['golden_integer_int64_tokens_per_s']:,.0f} "
         f"({r['golden_integer_int64_over_torch']:.4f}×)"),
        ("tokens/s golden BitLinears only", f"{r['golden_bitlinear_tokens_per_s']:,.0f}"),
    ]
    rows.append(("hwsim vs transformers, random packed BitNet",
                 f"max |Δlogit| {r['hf_logit_max_abs_diff']:.3g} (peak {r['hf_logit_peak']:.3g}), "
                 f"greedy agreement {r['hf_greedy_agreement']:.4f} of {r['hf_positions']}"))
    if "rtl" in r:
        x = r["rtl"]
        rows.append((f"RTL, layer {x['layer']}, {x['tokens']} tokens (Icarus)",
                     "bit-exact" if x["all_bit_exact"] else "MISMATCH"))
        rows += [(f"  {run['kernel']} {run['what']}",
                  f"{'==' if run['bit_exact'] else '!='} golden, {run['cycles']} cycles")
                 for run in x["runs"]]
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)
