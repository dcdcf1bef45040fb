"""Train, quantize, export and evaluate AirFM-DDA channel prediction (run folders).

``train_run`` writes a run folder: the float window-attention net, its global-attention twin
(same size, same data, same epochs), Brevitas QAT nets at int8 and int4 weights (int8
activations), their QONNX and QCDQ exports (executed by qonnx and onnxruntime and compared with
the fake-quant model), and ``run.json``. ``evaluate`` builds the zero-shot NMSE table: every
test scenario (profile × speed) against the last-value and linear-extrapolation baselines, with
each scenario marked seen or held out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from hwsim.errors import HwsimError
from hwsim.files import atomic_write_text, staged_dir
from models.channels.timevarying import ChannelSpec, generate

from . import data as D
from .model import AirFMConfig, AirFMNet, AirFMTokens

__all__ = ["build_set", "evaluate", "load_net", "predict", "train", "train_run"]

VARIANTS = ("window", "global", "window_int8", "window_int4")


def build_set(base: ChannelSpec, profiles, speeds, n_per: int, past: int, seed: int,
              task: str = "prediction", snrs_db=(10.0,), pilot_spacing: int = 4):
    """One :class:`~models.airfm.data.PredictionSet` over every (profile, speed); for
    estimation each sample's SNR is drawn from ``snrs_db``."""
    Hs = []
    for i, prof in enumerate(profiles):
        for j, v in enumerate(speeds):
            spec = ChannelSpec(**{**base.to_dict(), "profile": prof, "speed_kmh": float(v)})
            Hs.append(generate(spec, n_per, seed=seed + 1000 * i + j))
    H = np.concatenate(Hs)
    if task == "estimation":
        rng = np.random.default_rng(seed + 17)
        snr = rng.choice(np.asarray(snrs_db, dtype=np.float64), len(H))
        return D.estimation_split(H, snr, pilot_spacing, rng)
    return D.split(H, past)


def _nmse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    err = ((pred - target) ** 2).flatten(1).sum(1)
    return (err / (target ** 2).flatten(1).sum(1).clamp_min(1e-12)).mean()


def train(net: torch.nn.Module, ds: D.PredictionSet, epochs: int, lr: float, seed: int,
          batch: int = 64, log: Callable[[str], None] = print, name: str = "") -> list[float]:
    g = torch.Generator().manual_seed(seed)
    X, Y = torch.from_numpy(ds.X), torch.from_numpy(ds.Y)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(epochs, 1))
    hist = []
    for ep in range(epochs):
        net.train()
        perm = torch.randperm(len(X), generator=g)
        tot = 0.0
        for s in range(0, len(X), batch):
            idx = perm[s:s + batch]
            loss = _nmse_loss(net(X[idx]), Y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss) * len(idx)
        sched.step()
        hist.append(tot / len(X))
        log(f"  {name} epoch {ep + 1}/{epochs}: train NMSE {10 * np.log10(hist[-1]):.2f} dB")
    net.eval()
    return hist


def predict(net: torch.nn.Module, X: np.ndarray, batch: int = 128) -> np.ndarray:
    net.eval()
    with torch.no_grad():
        return np.concatenate([net(torch.from_numpy(X[s:s + batch])).numpy()
                               for s in range(0, len(X), batch)])


def _first(run, path: Path, x: np.ndarray) -> np.ndarray:
    """The first output of ``run`` (an executor of :mod:`quant.onnx`) on the graph's one input."""
    from quant.onnx import check

    return run(path, {check(path).graph.input[0].name: x.astype(np.float32)})[0]


def _export(net: AirFMNet, x: torch.Tensor, folder: Path, tag: str) -> dict:
    """QONNX and QCDQ exports of ``net`` on ``x`` (with ``hw_graph``: of
    :class:`~models.airfm.model.AirFMTokens` on the window-major tokens of ``x``)."""
    from quant.onnx import export_brevitas, run_onnxruntime, run_qonnx

    net.eval()
    if net.cfg.hw_graph:
        net, x = AirFMTokens(net).eval(), net.grid_to_tokens(x)
    with torch.no_grad():
        ref = net(x).numpy()
    qo = export_brevitas(net, x, folder / f"{tag}.qonnx.onnx", "qonnx")
    qc = export_brevitas(net, x, folder / f"{tag}.qcdq.onnx", "qcdq")
    xn = x.numpy()
    return {"qonnx_max_abs_diff": float(np.abs(_first(run_qonnx, qo, xn) - ref).max()),
            "qcdq_max_abs_diff": float(np.abs(_first(run_onnxruntime, qc, xn) - ref).max()),
            "ref_max_abs": float(np.abs(ref).max())}


def train_run(out: Path, cfg: AirFMConfig, base: ChannelSpec, profiles, speeds,
              n_per: int = 128, epochs: int = 10, qat_epochs: int = 2, seed: int = 0,
              lr: float = 3e-3, with_global: bool = True, export: bool = True,
              snrs_db=(0.0, 10.0, 20.0), pilot_spacing: int = 4,
              log: Callable[[str], None] = print) -> dict:
    from safetensors.torch import save_file

    from models.channels import Lmmse

    if n_per < 8:
        raise HwsimError(f"need at least 8 channels per scenario, not {n_per}")
    est = cfg.task == "estimation"
    frames = cfg.past if est else cfg.past + cfg.future
    if base.frames != frames:
        raise HwsimError(f"channel frames ({base.frames}) must be {frames} for {cfg.task}")
    geom = D.pilot_geometry(cfg.antennas, cfg.subcarriers, pilot_spacing)  # validates spacing
    torch.manual_seed(seed)
    log(f"generating {n_per} channels × {len(profiles)} profiles × {len(speeds)} speeds …")
    ds = build_set(base, profiles, speeds, n_per, cfg.past, seed, cfg.task, snrs_db,
                   pilot_spacing)
    nets, hist = {}, {}
    for variant in ("window", "global") if with_global else ("window",):
        torch.manual_seed(seed)
        net = AirFMNet(cfg.replace(attention=variant, weight_bits=None))
        hist[variant] = train(net, ds, epochs, lr, seed, log=log, name=variant)
        nets[variant] = net
    for bits in (8, 4):
        torch.manual_seed(seed)
        q = AirFMNet(cfg.replace(attention="window", weight_bits=bits))
        q.load_state_dict(nets["window"].state_dict(), strict=False)
        hist[f"window_int{bits}"] = train(q, ds, qat_epochs, lr / 5, seed + bits, log=log,
                                          name=f"QAT int{bits}")
        nets[f"window_int{bits}"] = q
    meta = {"config": cfg.to_dict(), "channel": base.to_dict(), "train_profiles": list(profiles),
            "train_speeds_kmh": [float(v) for v in speeds], "n_per": n_per, "epochs": epochs,
            "qat_epochs": qat_epochs, "seed": seed, "task": cfg.task,
            "train_snrs_db": [float(v) for v in snrs_db] if est else None,
            "pilot_spacing": pilot_spacing,
            "train_nmse_db": {k: [float(10 * np.log10(v)) for v in h] for k, h in hist.items()},
            "params": sum(p.numel() for p in nets["window"].parameters())}
    with staged_dir(out) as stage:
        for name, net in nets.items():
            save_file({k: v.contiguous() for k, v in net.state_dict().items()},
                      str(stage / f"{name}.safetensors"))
        if est:
            lm = Lmmse(geom, D.frames_to_rows(ds.H))
            np.savez(stage / "lmmse.npz", R_hp=lm.R_hp.astype(np.complex64),
                     R_pp=lm.R_pp.astype(np.complex64), pidx=lm._pidx)
        if export:
            x = torch.from_numpy(ds.X[:1])
            meta["onnx"] = {f"int{b}": _export(nets[f"window_int{b}"], x, stage, f"int{b}")
                            for b in (8, 4)}
        atomic_write_text(stage / "run.json", json.dumps(meta, indent=1) + "\n")
    log(f"wrote {out}")
    return meta


def _meta_schema() -> dict:
    from hwsim.loading import fields_of, integer, list_of, maybe, number, text

    return {"config": fields_of(AirFMConfig, antennas=integer(1, 1024),
                                subcarriers=integer(1, 4096), past=integer(2, 1024),
                                future=integer(1, 1024), dim=integer(1, 1024),
                                layers=integer(1, 64)),
            "channel": fields_of(ChannelSpec),
            "train_profiles": list_of(text(), 1), "train_speeds_kmh": list_of(number(0, 1000), 1),
            "pilot_spacing": maybe(integer(1))}


def _read_meta(run: Path) -> tuple[dict, AirFMConfig, ChannelSpec]:
    """``run.json``, checked (its keys, their types and ranges, a channel that fits the net's
    antennas, subcarriers and frames), with the config and channel it describes."""
    from hwsim.loading import build, check_meta, read_json

    f = Path(run) / "run.json"
    if not f.is_file():
        raise HwsimError(f"{run} is not an AirFM run folder (no run.json)")
    meta = check_meta(read_json(f, "run file"), _meta_schema(), f)
    cfg = build(AirFMConfig, meta["config"], f, "config")
    ch = build(ChannelSpec, meta["channel"], f, "channel")
    frames = cfg.past if cfg.task == "estimation" else cfg.past + cfg.future
    if (ch.antennas, ch.subcarriers, ch.frames) != (cfg.antennas, cfg.subcarriers, frames):
        raise HwsimError(f"{f}: channel (antennas {ch.antennas}, subcarriers {ch.subcarriers}, "
                         f"frames {ch.frames}) does not fit config ({cfg.antennas}, "
                         f"{cfg.subcarriers}, {frames})")
    if cfg.task == "estimation":
        D.pilot_geometry(cfg.antennas, cfg.subcarriers, meta.get("pilot_spacing") or 4)
    return meta, cfg, ch


def load_net(run: Path, variant: str) -> tuple[AirFMNet, dict]:
    """A trained variant of the run, its tensors checked against the net ``run.json``
    describes (names, shapes, dtypes, finite values) before any is used."""
    from hwsim.loading import load_weights

    meta, cfg, _ = _read_meta(run)
    bits = {"window_int8": 8, "window_int4": 4}.get(variant)
    att = "global" if variant == "global" else "window"
    f = Path(run) / f"{variant}.safetensors"
    if not f.is_file():
        raise HwsimError(f"{run} has no {variant} model ({f.name} missing)")
    net = load_weights(lambda: AirFMNet(cfg.replace(attention=att, weight_bits=bits)), f,
                       f"{variant} model")
    net.eval()
    return net, meta


def _load_lmmse(run: Path, geom):
    from models.channels import Lmmse

    f = Path(run) / "lmmse.npz"
    if not f.is_file():
        raise HwsimError(f"{run} has no LMMSE covariance ({f.name} missing)")
    return Lmmse.from_file(f, geom)


def evaluate(run: Path, profiles, speeds, n_test: int = 128, seed: int = 5000,
             out: Path | None = None, snr_db: float = 10.0,
             delay_spread_s: float | None = None) -> dict:
    """NMSE (dB) per test scenario: baselines and every trained variant of the run.

    Prediction: last value and linear extrapolation; estimation (at ``snr_db``): LS and LMMSE.
    ``delay_spread_s`` replaces the training delay spread in the test channels (a scenario is
    "seen" only with the training profile, speed and delay spread).
    """
    meta, cfg, base = _read_meta(run)
    same_ds = delay_spread_s is None or delay_spread_s == base.delay_spread_s
    if delay_spread_s is not None:
        base = ChannelSpec(**{**base.to_dict(), "delay_spread_s": float(delay_spread_s)})
    past, est = cfg.past, cfg.task == "estimation"
    spacing = meta.get("pilot_spacing") or 4
    variants = [v for v in VARIANTS if (Path(run) / f"{v}.safetensors").is_file()]
    nets = {v: load_net(run, v)[0] for v in variants}
    if est:
        geom = D.pilot_geometry(cfg.antennas, cfg.subcarriers, spacing)
        lm = _load_lmmse(run, geom)
    rows = []
    for prof in profiles:
        for v in speeds:
            ds = build_set(base, [prof], [v], n_test, past, seed, cfg.task, (snr_db,), spacing)
            Hf = ds.target()
            row = {"profile": prof, "speed_kmh": float(v),
                   "delay_spread_ns": round(base.delay_spread_s * 1e9, 3),
                   "seen": same_ds and prof in meta["train_profiles"]
                   and float(v) in meta["train_speeds_kmh"]}
            if est:
                lmmse = lm.estimate(ds.pilots, snr_db)  # (n, F, A)
                row["ls"] = D.nmse_db_of(Hf, ds.ls[:, :, -1:])
                row["lmmse"] = D.nmse_db_of(Hf, D.rows_to_frames(lmmse, len(Hf), 1))
            else:
                row["last_value"] = D.nmse_db_of(Hf, D.last_value(ds.H, past))
                row["linear"] = D.nmse_db_of(Hf, D.linear_extrapolation(ds.H, past))
            for name, net in nets.items():
                row[name] = D.nmse_db_of(Hf, D.to_stf(predict(net, ds.X)))
            rows.append(row)
    base_cols = ["ls", "lmmse"] if est else ["last_value", "linear"]
    res = {"run": str(run), "task": cfg.task, "snr_db": snr_db if est else None,
           "n_test": n_test, "columns": [*base_cols, *variants], "rows": rows}
    if out is not None:
        with staged_dir(out) as stage:
            atomic_write_text(stage / "nmse.json", json.dumps(res, indent=1) + "\n")
            atomic_write_text(stage / "nmse.md", table(res) + "\n")
            _plot(res, stage / "nmse.png")
    return res


def table(res: dict) -> str:
    cols = res["columns"]
    head = "| profile | speed km/h | DS ns | scenario | " + " | ".join(cols) + " |"
    lines = [head, "|" + "---|" * (4 + len(cols))]
    for r in res["rows"]:
        lines.append(f"| {r['profile']} | {r['speed_kmh']:g} | {r['delay_spread_ns']:g} | "
                     f"{'seen' if r['seen'] else 'held out'} | "
                     + " | ".join(f"{r[c]:.2f}" for c in cols) + " |")
    what = (f"the current frame, estimated at {res['snr_db']:g} dB SNR"
            if res.get("task") == "estimation" else "the predicted future frames")
    return "\n".join(lines) + f"\n\nNMSE in dB over {what} (lower is better)."


def _plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = res["rows"], res["columns"]
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(rows)), 4))
    w = 0.8 / len(cols)
    for i, c in enumerate(cols):
        ax.bar(np.arange(len(rows)) + i * w, [r[c] for r in rows], w, label=c)
    ax.set_xticks(np.arange(len(rows)) + 0.4 - w / 2)
    ax.set_xticklabels([f"{r['profile']}\n{r['speed_kmh']:g} km/h" + ("" if r["seen"] else "\n(held out)")
                        for r in rows], fontsize=7)
    ax.set_ylabel("NMSE (dB)")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
