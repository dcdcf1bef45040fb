"""``hwsim airfm train|eval``: AirFM-DDA channel prediction and estimation (models/airfm)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hwsim.errors import HwsimError

from ._common import output_dir, positive_int, print_json


def _floats(text: str, what: str, lo: float = 0.0, hi: float = 1000.0) -> list[float]:
    try:
        vals = [float(t) for t in str(text).split(",") if t.strip()]
    except ValueError:
        raise HwsimError(f"{what} must be comma-separated numbers, not {text!r}") from None
    if not vals or any(not lo <= v <= hi for v in vals):
        raise HwsimError(f"{what} must be one or more numbers in {lo:g} … {hi:g}, not {text!r}")
    return vals


def _window(text: str) -> tuple[int, int]:
    try:
        a, d = (int(t) for t in str(text).lower().split("x"))
    except ValueError:
        raise HwsimError(f"window must be ANGLExDELAY, e.g. 4x8, not {text!r}") from None
    return a, d


def register(sub) -> None:
    p = sub.add_parser("airfm", help="AirFM-DDA channel prediction: train, evaluate",
                       description="AirFM-DDA (arXiv 2605.00020): window attention over the "
                                   "angle-Doppler-delay grid on Sionna TR 38.901 channels.")
    s = p.add_subparsers(dest="airfm_command", metavar="ACTION", required=True)
    add_train_parser(s, "train")
    add_eval_parser(s, "eval")


def add_train_parser(sub, name: str = "airfm") -> None:
    """``train`` under ``hwsim airfm``; ``name="airfm"`` wires ``hwsim train airfm``."""
    t = sub.add_parser(name, help="train window + global nets, QAT int8/int4, export ONNX",
                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("-o", "--out", type=output_dir, required=True, help="run folder to write")
    t.add_argument("--task", choices=("prediction", "estimation"), default="prediction",
                   help="prediction: future frames from past ones; estimation: the current "
                        "frame from noisy pilots")
    t.add_argument("--profiles", default="CDL-A,CDL-B,CDL-C", help="training profiles")
    t.add_argument("--speeds", default="30,60", help="training UE speeds in km/h")
    t.add_argument("--delay-spread-ns", type=float, default=100.0, help="RMS delay spread")
    t.add_argument("--per", type=positive_int, default=128, help="channels per profile×speed")
    t.add_argument("--epochs", type=positive_int, default=8, help="float epochs")
    t.add_argument("--qat-epochs", type=positive_int, default=2, help="QAT epochs per bit width")
    t.add_argument("--past", type=positive_int, default=8, help="past frames P (input)")
    t.add_argument("--future", type=positive_int, default=2,
                   help="future frames Q (prediction; estimation outputs 1)")
    t.add_argument("--snrs", default="0,10,20", help="estimation: training SNRs in dB")
    t.add_argument("--pilot-spacing", type=positive_int, default=4,
                   help="estimation: pilots on every N-th subcarrier")
    t.add_argument("--antennas", type=positive_int, default=8, help="BS antennas A")
    t.add_argument("--subcarriers", type=positive_int, default=32, help="subcarriers F")
    t.add_argument("--dim", type=positive_int, default=16, help="token width = head dim")
    t.add_argument("--layers", type=positive_int, default=2, help="attention blocks")
    t.add_argument("--window", default="4x8", help="window ANGLExDELAY tokens")
    t.add_argument("--input-scale", choices=("tensor", "token"), default="tensor",
                   help="QAT input quantizer: one int8 scale per tensor, or per angle-delay cell")
    t.add_argument("--no-global", action="store_true", help="skip the global-attention twin")
    t.add_argument("--seed", type=int, default=0, help="data and training seed")
    t.set_defaults(func=_train)


def add_eval_parser(sub, name: str = "airfm") -> None:
    """``eval`` under ``hwsim airfm``; ``name="airfm"`` wires ``hwsim eval airfm``."""
    e = sub.add_parser(name, help="zero-shot NMSE table vs last-value / linear (MD, JSON, PNG)",
                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    e.add_argument("run", type=Path, help="run folder written by `hwsim airfm train`")
    e.add_argument("--profiles", default="CDL-A,CDL-B,CDL-C,CDL-D,CDL-E",
                   help="test profiles (CDL-A…E, TDL-A…E)")
    e.add_argument("--speeds", default="30,60,120", help="test UE speeds in km/h")
    e.add_argument("--test", type=positive_int, default=128, help="channels per scenario")
    e.add_argument("--seed", type=int, default=5000, help="test-channel seed")
    e.add_argument("--snr", type=float, default=10.0, help="estimation: test SNR in dB")
    e.add_argument("--delay-spread-ns", type=float, default=None,
                   help="test delay spread (default: the run's training delay spread)")
    e.add_argument("-o", "--out", type=output_dir, default=None,
                   help="folder for nmse.md/json/png (default: RUN/eval)")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=_eval)


def _train(args) -> int:
    from models.airfm.model import AirFMConfig
    from models.channels.timevarying import ChannelSpec, parse_profiles

    profiles = parse_profiles(args.profiles)
    speeds = _floats(args.speeds, "speeds")
    snrs = _floats(args.snrs, "SNRs", -50.0, 100.0)
    wa, wd = _window(args.window)
    est = args.task == "estimation"
    cfg = AirFMConfig(antennas=args.antennas, subcarriers=args.subcarriers, past=args.past,
                      future=1 if est else args.future, dim=args.dim, layers=args.layers,
                      window_angle=wa, window_delay=wd, task=args.task,
                      input_scale=args.input_scale)
    if args.past < 2:
        raise HwsimError(f"past frames must be at least 2, not {args.past}")
    if args.subcarriers % args.pilot_spacing:
        raise HwsimError(f"pilot spacing ({args.pilot_spacing}) must divide subcarriers "
                         f"({args.subcarriers})")
    base = ChannelSpec(delay_spread_s=args.delay_spread_ns * 1e-9, antennas=args.antennas,
                       frames=args.past if est else args.past + args.future,
                       subcarriers=args.subcarriers)
    import torch

    from models.airfm.pipeline import train_run

    torch.set_num_threads(1)
    train_run(args.out, cfg, base, profiles, speeds, n_per=args.per, epochs=args.epochs,
              qat_epochs=args.qat_epochs, seed=args.seed, with_global=not args.no_global,
              snrs_db=snrs, pilot_spacing=args.pilot_spacing)
    return 0


def _eval(args) -> int:
    from models.channels.timevarying import parse_profiles

    profiles = parse_profiles(args.profiles)
    speeds = _floats(args.speeds, "speeds")
    ds = args.delay_spread_ns
    if ds is not None and not 0 < ds <= 1e5:
        raise HwsimError(f"delay spread must be in (0, 100000] ns, not {ds:g}")
    if not (args.run / "run.json").is_file():
        raise HwsimError(f"{args.run} is not an AirFM run folder (no run.json)")
    import torch

    from models.airfm.pipeline import evaluate, table

    torch.set_num_threads(1)
    res = evaluate(args.run, profiles, speeds, n_test=args.test, seed=args.seed,
                   out=args.out or (args.run / "eval"), snr_db=args.snr,
                   delay_spread_s=None if ds is None else ds * 1e-9)
    if args.json:
        print_json(res)
    else:
        print(table(res))
        print(f"wrote {args.out or (args.run / 'eval')}/nmse.{{md,json,png}}")
    return 0
