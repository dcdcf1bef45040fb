"""``hwsim train bitnet``: train the float baseline and the ternary QAT model, report perplexity."""

from __future__ import annotations

import importlib
from pathlib import Path

from ._common import output_dir, positive_int, print_json

#: models whose own command module (``hwsim MODEL train``) is also reachable as ``hwsim train MODEL``
_OTHER_MODELS = ("snn", "swiftchannel", "airfm")


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model (float baseline and QAT) and report metrics",
                       description="Train a model of hwsim's model zoo.")
    msub = p.add_subparsers(dest="model", metavar="MODEL", required=True)
    b = msub.add_parser("bitnet", help="BitNet b1.58: float baseline and ternary QAT, byte-level",
                        description="Train the float baseline and the ternary QAT BitNet b1.58 "
                                    "on the same batches; save checkpoints under OUT/fp and "
                                    "OUT/ternary and report validation perplexity of both with "
                                    "the paper's ternary/FP16 ratios. Default corpus: CPython's "
                                    "standard-library source (no download).")
    b.add_argument("--config", default="tiny",
                   help="model shape: tiny, 700M, 1.3B, 3B, 2B4T, or a config JSON file "
                        "(Hugging Face config.json or an hwsim config)")
    b.add_argument("--text", type=Path, default=None,
                   help="train on this UTF-8 text file instead (last 10%% is validation)")
    b.add_argument("--steps", type=positive_int, default=800, help="optimizer steps per model")
    b.add_argument("--batch", type=positive_int, default=16, help="sequences per step")
    b.add_argument("--seq", type=positive_int, default=128, help="bytes per sequence")
    b.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (AdamW)")
    b.add_argument("--seed", type=int, default=0, help="initialization and batch-order seed")
    b.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads")
    b.add_argument("-o", "--out", type=output_dir, default="build/bitnet",
                   help="build folder; checkpoints go to OUT/<config>/{fp,ternary}")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.set_defaults(func=run_bitnet)
    for model in _OTHER_MODELS:  # the same parsers as `hwsim MODEL train`
        importlib.import_module(f"hwsim.cli.{model}").add_train_parser(msub, model)


def run_bitnet(args) -> int:
    from models.bitnet.config import resolve_config

    cfg = resolve_config(args.config)  # sizes checked before torch is imported
    from models.bitnet.data import stdlib_corpus, text_file_corpus
    from models.bitnet.train import TrainSettings, train_bitnet

    settings = TrainSettings(steps=args.steps, batch=args.batch, seq=args.seq, lr=args.lr,
                             seed=args.seed, threads=args.threads)
    settings.check(cfg)  # before any data is read or anything written
    corpus = text_file_corpus(args.text) if args.text else stdlib_corpus()
    r = train_bitnet(cfg, corpus, settings, args.out / cfg.name, progress=not args.no_progress)
    if args.json:
        print_json(r)
        return 0
    print(f"BitNet b1.58 {cfg.name} on {r['corpus']['source']} "
          f"({r['corpus']['train_bytes']:,} train / {r['corpus']['val_bytes']:,} val bytes)")
    print(f"  {'model':<10} {'val ppl':>9} {'train s':>9}")
    for k in ("fp", "ternary"):
        print(f"  {k:<10} {r[k]['val_ppl']:>9.3f} {r[k]['train_s']:>9.1f}")
    ratios = ", ".join(f"{k} {v:.4f}" for k, v in r["paper_ppl_ratio"].items())
    print(f"  ternary / fp perplexity: {r['ppl_ratio']:.4f} here; paper: {ratios}")
    print(f"  checkpoints: {args.out / cfg.name}/fp, {args.out / cfg.name}/ternary")
    return 0
