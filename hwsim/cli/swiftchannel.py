"""``hwsim swiftchannel train|eval|ablate``: the SwiftChannel channel estimator (models/swiftchannel)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import output_dir, positive_int, print_json

#: names of models.swiftchannel.train.LOSSES (spelled here so that `hwsim --help` needs no torch;
#: tests/cli checks the two agree)
QAT_LOSSES = ("nmse", "geo", "balanced")


def _geometry(args):
    from models.channels import DEFAULT, PAPER, Geometry

    base = PAPER if args.geometry == "paper" else DEFAULT
    over = {k: getattr(args, k) for k in ("bs_ant", "ue_ant", "subcarriers", "freq_comp",
                                          "space_comp") if getattr(args, k) is not None}
    return Geometry(**{**base.to_dict(), **over})


def register(sub) -> None:
    p = sub.add_parser("swiftchannel",
                       help="SwiftChannel 5G channel estimator: train, evaluate, ablate",
                       description="SwiftChannel (arXiv 2605.01931) on Sionna CDL-B channels.")
    ssub = p.add_subparsers(dest="sc_command", metavar="ACTION", required=True)
    add_train_parser(ssub, "train")
    add_eval_parser(ssub, "eval")
    a = ssub.add_parser("ablate", help="where the int8 model loses NMSE: rounding ablation of "
                                       "its activation points, and the uint8 output floor",
                        description="Run the run's integer model in float64 with each "
                                    "activation point rounded (as the hardware does) or exact, "
                                    "and report the NMSE each rounding costs, per SNR "
                                    "(models/swiftchannel/ablation.py).",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    a.add_argument("run", type=Path, help="run folder written by `hwsim swiftchannel train`")
    a.add_argument("--snr", default="10,30", help="SNRs in dB: start:stop:step or a,b,c")
    a.add_argument("--test", type=positive_int, default=96, help="test channels (seed 1000)")
    a.add_argument("--json", action="store_true", help="print one JSON object")
    a.set_defaults(func=_ablate)


def add_train_parser(sub, name: str = "swiftchannel") -> None:
    """``train`` under ``hwsim swiftchannel``; ``name="swiftchannel"`` wires ``hwsim train swiftchannel``."""
    t = sub.add_parser(name, help="train the float student, re-parameterize, QAT to int8",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("-o", "--out", type=output_dir, required=True, help="run folder to write")
    t.add_argument("--geometry", choices=("default", "paper"), default="default",
                   help="default: 16×2 antennas, 96 subcarriers; paper: 64×2, 432")
    for name, h in (("bs-ant", "BS antennas"), ("ue-ant", "UE antennas"),
                    ("subcarriers", "subcarriers"), ("freq-comp", "pilot spacing in frequency"),
                    ("space-comp", "pilot spacing across BS antennas")):
        t.add_argument(f"--{name}", type=positive_int, default=None, help=f"override: {h}")
    t.add_argument("--train", type=positive_int, default=8192, help="training channels")
    t.add_argument("--epochs", type=positive_int, default=60, help="float epochs")
    t.add_argument("--loss", choices=QAT_LOSSES, default="nmse",
                   help="float training loss (the same choices as --qat-loss)")
    t.add_argument("--qat-epochs", type=positive_int, default=16, help="QAT epochs")
    t.add_argument("--qat-loss", choices=QAT_LOSSES, default="balanced",
                   help="QAT loss: nmse (the paper's mean NMSE, dominated by low-SNR samples), "
                        "geo (mean NMSE in dB), balanced (the geometric mean of the two)")
    t.add_argument("--qat-lr", type=float, default=1e-3, help="QAT learning rate (cosine decay)")
    t.add_argument("--qat-distill", type=float, default=0.0, metavar="W",
                   help="add W × the int8 model's excess error over the float student "
                        "(‖q − f‖² / ‖f − H‖², per sample) to the QAT loss (0: off)")
    t.add_argument("--qat-snrs", default="5:30:5",
                   help="SNRs (dB) of the QAT data: start:stop:step or a,b,c")
    t.add_argument("--from-float", type=Path, default=None, metavar="RUN",
                   help="start from RUN's float student (and geometry): QAT + export + golden only")
    t.add_argument("--teacher-epochs", type=int, default=0,
                   help="train a 24-channel teacher first and distill from it (0: no teacher)")
    t.add_argument("--seed", type=int, default=0, help="data and training seed")
    t.set_defaults(func=_train)


def add_eval_parser(sub, name: str = "swiftchannel") -> None:
    """``eval`` under ``hwsim swiftchannel``; ``name="swiftchannel"`` wires ``hwsim eval swiftchannel``."""
    e = sub.add_parser(name, help="NMSE vs SNR of LS, LMMSE, float and int8 (table, CSV, PNG)",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    e.add_argument("run", type=Path, help="run folder written by `hwsim swiftchannel train`")
    e.add_argument("--snr", default="0:30:5", help="SNRs in dB: start:stop:step or a,b,c")
    e.add_argument("--test", type=positive_int, default=256, help="test channels")
    e.add_argument("--seed", type=int, default=1000, help="test-channel seed")
    e.add_argument("-o", "--out", type=output_dir, default=None,
                   help="folder for nmse.csv and nmse.png (default: RUN/eval)")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=_eval)


def _train(args) -> int:
    import torch

    from models.swiftchannel.pipeline import parse_snrs, train_run

    geom = _geometry(args)  # validates before anything is generated or written
    qat_snrs = tuple(parse_snrs(args.qat_snrs))
    torch.set_num_threads(1)
    train_run(args.out, geom, n_train=args.train, epochs=args.epochs, qat_epochs=args.qat_epochs,
              seed=args.seed, teacher_epochs=args.teacher_epochs, qat_lr=args.qat_lr,
              qat_snrs=qat_snrs, from_float=args.from_float, qat_loss=args.qat_loss,
              loss=args.loss, qat_distill=args.qat_distill)
    return 0


def _eval(args) -> int:
    import torch

    from models.swiftchannel.pipeline import evaluate, parse_snrs

    snrs = parse_snrs(args.snr)
    torch.set_num_threads(1)
    res = evaluate(args.run, snrs, n_test=args.test, seed=args.seed,
                   out=args.out or (args.run / "eval"))
    if args.json:
        print_json(res)
        return 0
    g = res["geometry"]
    print(f"NMSE (dB), CDL-{g['cdl_model']}, {g['bs_ant']}×{g['ue_ant']} antennas, "
          f"{g['subcarriers']} subcarriers, {res['n_test']} test channels")
    print(f"{'SNR':>6} {'LS':>8} {'LS ext.':>8} {'LMMSE':>8} {'float':>8} {'int8':>8} "
          f"{'int8-float':>10}")
    for r in res["rows"]:
        print(f"{r['snr_db']:>6g} {r['ls']:>8.2f} {r['ls_sionna']:>8.2f} {r['lmmse']:>8.2f} "
              f"{r['float']:>8.2f} {r['int8']:>8.2f} {r['int8'] - r['float']:>10.2f}")
    print("LS: edge pilots held (hwsim's baseline); LS ext.: extrapolated past the edge pilots "
          "(Sionna's LinearInterpolator)")
    print(f"wrote {res['csv']}\nwrote {res['png']}")
    return 0


def _ablate(args) -> int:
    import torch

    from models.swiftchannel.ablation import ablate
    from models.swiftchannel.pipeline import parse_snrs

    snrs = parse_snrs(args.snr)
    torch.set_num_threads(1)
    res = ablate(args.run, snrs, n_test=args.test)
    if args.json:
        print_json(res)
        return 0
    for row in res["snrs"]:
        fl = row["output_floor"]
        print(f"SNR {row['snr_db']:g} dB: float {row['float']:.2f}, int8 {row['int8']:.2f}, "
              f"every activation exact {row['all_exact']:.2f} dB")
        print(f"  uint8 output floor: the float student with only its output rounded loses "
              f"{fl['run_grid_db']:+.2f} dB on the run's grid, {fl['best_grid_db']:+.2f} dB "
              f"on the best grid")
        print(f"  {'point':<12} {'exact alone':>12} {'rounds alone':>13}")
        for p, d in row["points"].items():
            print(f"  {p:<12} {d['exact_alone_db']:+12.2f} {d['rounds_alone_db']:+13.2f}")
    return 0
