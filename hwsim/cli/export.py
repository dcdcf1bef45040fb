"""``hwsim export bitnet``: QONNX and QCDQ ONNX of a trained BitNet (one layer and the model)."""

from __future__ import annotations

from pathlib import Path

from ._common import output_dir, positive_int, print_json


def register(sub) -> None:
    p = sub.add_parser("export", help="export a trained model to QONNX and QCDQ ONNX",
                       description="Export a trained model to ONNX.")
    msub = p.add_subparsers(dest="model", metavar="MODEL", required=True)
    b = msub.add_parser("bitnet", help="BitNet b1.58 ternary checkpoint → QONNX + QCDQ",
                        description="Write QONNX and QCDQ ONNX of one decoder layer and of the "
                                    "whole model (fixed prefill length), then run each in its "
                                    "executor (QCDQ: onnxruntime, QONNX: qonnx) and compare "
                                    "with the torch fake-quant model.")
    b.add_argument("--checkpoint", type=Path, default=Path("build/bitnet/tiny/ternary"),
                   help="checkpoint folder: from `hwsim train bitnet` or a Hugging Face "
                        "BitNet checkpoint (config.json + safetensors)")
    b.add_argument("--seq", type=positive_int, default=32, help="prefill length of the graphs")
    b.add_argument("--layer", type=int, default=0, help="decoder layer exported alone")
    b.add_argument("-o", "--out", type=output_dir, default=None,
                   help="output folder (default: CHECKPOINT/../onnx)")
    b.add_argument("--no-verify", action="store_true", help="skip running the exported graphs")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.set_defaults(func=run_bitnet)


def _ort_default(v: dict) -> str:
    """A QCDQ row's figures under onnxruntime's default session options (empty for QONNX)."""
    if "ort_default_max_abs_diff" not in v:
        return ""
    return (f"; onnxruntime default options: max |Δ| {v['ort_default_max_abs_diff']:.3g}, "
            f"{v['ort_default_positions_over_tol']} positions beyond, argmax "
            f"{v['ort_default_argmax_agreement']:.4f}")


def run_bitnet(args) -> int:
    import torch

    from models.bitnet.export import export_agrees, export_bitnet, verify_export
    from models.bitnet.hf import load_model_folder

    torch.set_num_threads(1)
    model, _ = load_model_folder(args.checkpoint)
    out = args.out or args.checkpoint.parent / "onnx"
    r = export_bitnet(model, out, seq=args.seq, layer=args.layer)
    result = {"files": r["files"]}
    if not args.no_verify:
        result["verify"] = verify_export(model, r, args.layer)
    if args.json:
        print_json(result)
        return 0
    for f in r["files"]:
        print(f"wrote {f}")
    for v in result.get("verify", []):
        print(f"  {v['file']}: max |onnx − torch| = {v['max_abs_diff']:.3g} "
              f"(output peak {v['torch_peak']:.3g}; {v['positions_over_tol']} of "
              f"{v['positions']} positions beyond 1e-4 · peak), argmax agreement "
              f"{v['argmax_agreement']:.4f}{_ort_default(v)}: "
              f"{'ok' if export_agrees(v) else 'MISMATCH'}")
    return 0
