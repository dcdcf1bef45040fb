"""``hwsim snn train|eval``: the spiking visual-attention classifier (snnTorch, QAT, integer)."""

from __future__ import annotations

import json
from pathlib import Path

from ._common import output_dir, output_file, positive_int, print_json, require


def _data_args(p, defaults: bool = True) -> None:
    d = (lambda v: v) if defaults else (lambda v: None)
    p.add_argument("--images", default=d("digits"),
                   help="'digits' (embedded), a Sign Language MNIST CSV, or an .npy/.npz")
    p.add_argument("--limit", type=positive_int, default=None, help="first N images only")
    p.add_argument("--canvas", type=positive_int, default=d(48),
                   help="sensor side (px); > 48 places the 48-px digit at random")
    p.add_argument("--attention", action="store_true", default=None if not defaults else False,
                   help="crop 48 × 48 around the von Mises saliency peak before classifying")
    p.add_argument("--seed", type=int, default=d(0), help="events and split seed")


def register(sub) -> None:
    p = sub.add_parser("snn", help="spiking classifier: train (float + QAT) and evaluate",
                       description="The paper's SNN classifier on DVS events of static images.")
    ssub = p.add_subparsers(dest="snn_command", metavar="ACTION", required=True)
    add_train_parser(ssub, "train")
    add_eval_parser(ssub, "eval")


def add_train_parser(sub, name: str = "snn") -> None:
    """``train`` under ``hwsim snn``; call with ``name="snn"`` to wire ``hwsim train snn``."""
    t = sub.add_parser(name, help="SNN: train float, then QAT per weight width; check integer "
                                  "and ONNX equality",
                       description="Writes float.safetensors, int<b>.safetensors, "
                                   "int<b>_step.onnx and report.json into OUT.")
    _data_args(t)
    t.add_argument("-o", "--out", type=output_dir, required=True, help="output folder")
    t.add_argument("--epochs", type=int, default=8, help="float training epochs")
    t.add_argument("--qat-epochs", type=int, default=2, help="QAT epochs per bit width")
    t.add_argument("--bits", type=int, nargs="*", default=[8, 4], help="weight widths for QAT")
    t.add_argument("--mem-bits", type=int, default=16, help="membrane width for QAT")
    t.add_argument("--json", action="store_true", help="print the report as JSON")
    t.set_defaults(func=run_train)


def add_eval_parser(sub, name: str = "snn") -> None:
    """``eval`` under ``hwsim snn``; call with ``name="snn"`` to wire ``hwsim eval snn``."""
    e = sub.add_parser(name, help="SNN: accuracy of a checkpoint on the test split",
                       description="Evaluates CHECKPOINT on the test split of the data it was "
                                   "trained on (options override); a quantized checkpoint is "
                                   "also run as the golden integer SNN and, with --onnx, "
                                   "through onnxruntime.")
    e.add_argument("checkpoint", type=Path, help="a .safetensors written by `hwsim snn train`")
    _data_args(e, defaults=False)
    e.add_argument("--onnx", type=output_file, default=None,
                   help="also export the per-step ONNX graph here and compare")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=run_eval)


def _dataset(images, limit, canvas, attention, seed):
    from models.snn.events import DvsConfig
    from models.snn.train import make_dataset

    require(canvas >= 48, f"--canvas must be at least 48 (the classifier's input), not {canvas}")
    return make_dataset(images, limit=limit, seed=seed, dvs=DvsConfig(canvas=canvas),
                        attention=attention)


def run_train(args) -> int:
    from hwsim.files import staged_dir
    from models.snn.train import (
        TrainConfig,
        accuracy,
        integer_agreement,
        onnx_agreement,
        save_checkpoint,
        train,
    )

    require(args.epochs >= 1, f"--epochs must be at least 1, not {args.epochs}")
    require(args.qat_epochs >= 0, f"--qat-epochs must be ≥ 0, not {args.qat_epochs}")
    for b in args.bits:
        require(2 <= b <= 8, f"--bits must be 2 … 8, not {b}")
    require(4 <= args.mem_bits <= 16, f"--mem-bits must be 4 … 16, not {args.mem_bits}")
    ds = _dataset(args.images, args.limit, args.canvas, args.attention, args.seed)
    log = (lambda *_: None) if args.json else print
    res = train(ds, TrainConfig(epochs=args.epochs, qat_epochs=args.qat_epochs, seed=args.seed),
                tuple(args.bits), args.mem_bits, log=log)
    data = {"images": str(args.images), "limit": args.limit, "canvas": args.canvas,
            "attention": args.attention, "seed": args.seed}
    report = {"data": {**data, "train": len(ds.y_train), "test": len(ds.y_test),
                       "classes": ds.classes},
              "accuracy": {"float": accuracy(res["float"], ds.x_test, ds.y_test)},
              "integer": {}, "onnx": {}, "history": res["history"]}
    with staged_dir(args.out) as stage:
        save_checkpoint(stage / "float.safetensors", res["float"], {"data": data})
        for b, q in res["quant"].items():
            report["accuracy"][f"int{b}"] = accuracy(q, ds.x_test, ds.y_test)
            report["integer"][f"int{b}"] = integer_agreement(q, ds.x_test)
            report["onnx"][f"int{b}"] = onnx_agreement(q, ds.x_test, stage / f"int{b}_step.onnx")
            save_checkpoint(stage / f"int{b}.safetensors", q, {"data": data})
        (stage / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    if args.json:
        print_json(report)
    else:
        print(f"test accuracy ({len(ds.y_test)} samples):")
        for k, v in report["accuracy"].items():
            extra = ""
            if k in report["integer"]:
                i, o = report["integer"][k], report["onnx"][k]
                extra = (f"  integer SNN == torch on {i['equal_spike_counts']}/{i['samples']}, "
                         f"ONNX == torch on {o['equal_spike_counts']}/{o['samples']}")
            print(f"  {k:<6} {v:.4f}{extra}")
        print(f"wrote {args.out}")
    return 0


def run_eval(args) -> int:
    from models.snn.classifier import QuantSnnClassifier
    from models.snn.train import accuracy, integer_agreement, load_checkpoint, onnx_agreement

    model, info = load_checkpoint(args.checkpoint)
    data = info.get("data") or {}

    def pick(name, default):
        v = getattr(args, name)
        return v if v is not None else data.get(name, default)

    ds = _dataset(pick("images", "digits"), pick("limit", None), pick("canvas", 48),
                  bool(pick("attention", False)), pick("seed", 0))
    require(ds.classes <= model.shape.classes,
            f"the data have {ds.classes} classes, the checkpoint only {model.shape.classes}")
    out = {"checkpoint": str(args.checkpoint), "kind": info["kind"],
           "test_samples": len(ds.y_test), "accuracy": accuracy(model, ds.x_test, ds.y_test)}
    if isinstance(model, QuantSnnClassifier):
        out["weight_bits"], out["mem_bits"] = model.weight_bits, model.mem_bits
        out["integer"] = integer_agreement(model, ds.x_test)
        if args.onnx:
            out["onnx"] = onnx_agreement(model, ds.x_test, args.onnx)
    if args.json:
        print_json(out)
    else:
        print(f"{args.checkpoint}: test accuracy {out['accuracy']:.4f} "
              f"({out['test_samples']} samples)")
        if "integer" in out:
            i = out["integer"]
            print(f"  integer SNN: equal spike counts {i['equal_spike_counts']}/{i['samples']}, "
                  f"equal predictions {i['equal_predictions']}/{i['samples']}")
        if "onnx" in out:
            o = out["onnx"]
            print(f"  onnxruntime: equal spike counts {o['equal_spike_counts']}/{o['samples']}")
    return 0
