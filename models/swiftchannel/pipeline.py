"""The SwiftChannel flows behind ``hwsim swiftchannel train|eval`` and the benchmark.

``train_run`` writes one run folder (through :func:`hwsim.files.staged_dir`, so a failed run
leaves nothing behind)::

    RUN/run.json               geometry, student config, seeds, training history
    RUN/float.safetensors      the re-parameterized float student (plain 3×3 convs)
    RUN/int8.safetensors       the integer model (codes, multipliers, shifts, zero points, LUT)
    RUN/lmmse.npz              the LMMSE baseline's covariances (from the training channels)
    RUN/int8.qcdq.onnx         integer ONNX graph, float in/out (run by onnxruntime)
    RUN/int8.qonnx.onnx        the same integer graph on codes (run by qonnx's executor)

The default recipe: float training (Conv3XC) at the training SNRs, re-parameterization, then
32 QAT epochs at learning rate 1e-3 (cosine) on SNRs 5, 10, …, 30 dB. ``from_float`` skips the
float training and starts the QAT from an earlier run's float student.

``evaluate`` reads it and measures NMSE (dB) per SNR for LS + linear interpolation, LMMSE, the
float student and the int8 student (run through the integer golden, which equals the QAT
model code for code), writing ``nmse.csv`` and ``nmse.png``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from hwsim.errors import HwsimError
from hwsim.files import atomic_write_text, staged_dir
from hwsim.golden.swiftchannel import network as gold
from models.channels import (
    TEST_SPEED_RANGE_KMH,
    Geometry,
    Lmmse,
    ls_interpolate,
    ls_observation,
    nmse_db,
    pack_real,
    unpack_real,
)

from .model import StudentConfig, SwiftChannelNet, reparameterize
from .qat import QuantSwiftChannel, int_model
from .train import LOSSES, ChannelSet, config_for, make_set, predict, train

__all__ = ["INT_FORMAT", "QAT_EPOCHS", "QAT_LOSS", "QAT_LR", "QAT_SNRS_DB", "evaluate", "load_int_model",
           "load_run", "parse_snrs", "save_int_model", "train_run"]

#: the int8 model file's format tag (older run folders: power-of-two exponents, no tag; or
#: "multiplier-v1", whose SPAB requantized the skip sum to uint8 before the gate product)
INT_FORMAT = "fused-gate-v2"
#: the default QAT recipe (docs/swiftchannel.md names the command that measures it)
QAT_EPOCHS = 16
QAT_LR = 1e-3
QAT_SNRS_DB = (5.0, 10.0, 15.0, 20.0, 25.0, 30.0)
#: the QAT loss (a name in :data:`models.swiftchannel.train.LOSSES`)
QAT_LOSS = "balanced"


def parse_snrs(text: str) -> list[float]:
    """``"0:30:5"`` (start:stop:step, stop included) or ``"5,10,20"`` → SNRs in dB."""
    try:
        if ":" in text:
            parts = [float(p) for p in text.split(":")]
            if len(parts) != 3:
                raise ValueError
            a, b, s = parts
            if s <= 0:
                raise HwsimError(f"SNR step must be positive in {text!r}")
            vals = list(np.arange(a, b + s / 2, s)) if b >= a else []
        else:
            vals = [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise HwsimError(f"SNR range {text!r} is not start:stop:step or a comma list") from None
    if not vals:
        raise HwsimError(f"SNR range {text!r} is empty")
    return [round(float(v), 6) for v in vals]


# ---- integer model files -----------------------------------------------------------------
_SPAB_FIELDS = ("lut_mult", "lut_shift", "sum_mult_x", "sum_mult_c", "sum_shift", "z_out")


def save_int_model(m: gold.IntModel, path: Path) -> None:
    from safetensors.numpy import save_file

    arrays: dict[str, np.ndarray] = {"lut": np.asarray(m.lut, np.int64)}
    scal = {"format": INT_FORMAT, "s_in": m.s_in, "z_in": m.z_in, "rf": m.rf, "rs": m.rs,
            "s_out": m.s_out, "z_out": m.z_out, "blocks": len(m.blocks)}

    def conv(prefix, c: gold.ConvInt):
        for f in ("w", "b", "mult", "shift"):
            arrays[f"{prefix}.{f}"] = np.asarray(getattr(c, f), np.int64)
        scal[f"{prefix}.z_in"], scal[f"{prefix}.z_out"] = c.z_in, c.z_out

    conv("head", m.head)
    conv("tail", m.tail)
    conv("up", m.up)
    for i, b in enumerate(m.blocks):
        conv(f"block{i}.c1", b.c1)
        conv(f"block{i}.c2", b.c2)
        for f in _SPAB_FIELDS:
            scal[f"block{i}.{f}"] = int(getattr(b, f))
    save_file(arrays, str(path), metadata={"scalars": json.dumps(scal)})


def _int_scalars(blocks: int) -> dict:
    from hwsim.loading import integer, number

    code, i32, shift = integer(0, 255), integer(-(1 << 31), (1 << 31) - 1), integer(0, 62)
    rules = {"s_in": number(positive=True), "z_in": code, "rf": integer(1, 64),
             "rs": integer(1, 64), "s_out": number(positive=True), "z_out": code}
    for p in _conv_prefixes(blocks):
        rules[f"{p}.z_in"], rules[f"{p}.z_out"] = code, code
    for i in range(blocks):
        rules.update({f"block{i}.lut_mult": i32, f"block{i}.lut_shift": shift,
                      f"block{i}.sum_mult_x": i32, f"block{i}.sum_mult_c": i32,
                      f"block{i}.sum_shift": shift, f"block{i}.z_out": code})
    return rules


def _conv_prefixes(blocks: int) -> list[str]:
    return ["head", *(f"block{i}.c{j}" for i in range(blocks) for j in (1, 2)), "tail", "up"]


def load_int_model(path: Path, cfg: StudentConfig | None = None) -> gold.IntModel:
    """The integer model of ``path``, checked: its format tag, every scalar (type and range),
    every array present (none unknown) with integer codes of consistent shapes — those of the
    float student of ``cfg`` when given — weights within int8 and shifts within 0 … 62."""
    from hwsim.loading import check_meta, check_state, integer, read_safetensors

    path = Path(path)
    arrays, header = read_safetensors(path, "int8 model", framework="np")
    try:
        scal = json.loads(header["scalars"])
    except (KeyError, json.JSONDecodeError, RecursionError):
        raise HwsimError(f"{path} is not a SwiftChannel int8 model (no scalars metadata)") \
            from None
    if not isinstance(scal, dict):
        raise HwsimError(f"{path}: its scalars metadata must be a JSON object")
    if scal.get("format") != INT_FORMAT:
        old = scal.get("format", "power-of-two")
        raise HwsimError(f"{path} holds an int8 model of an older format ({old}, now {INT_FORMAT}); "
                         f"redo its QAT with `hwsim swiftchannel train -o NEW --from-float "
                         f"{path.parent}`")
    where = f"{path} scalars"
    check_meta(scal, {"blocks": integer(0, 64)}, where)
    nb = scal["blocks"]
    if cfg is not None and nb != cfg.blocks:
        raise HwsimError(f"{where}: blocks is {nb}, the run's student has {cfg.blocks}")
    check_meta(scal, _int_scalars(nb), where)
    if cfg is not None:
        shapes = {k: v.shape for k, v in SwiftChannelNet(cfg).state_dict().items()}
    else:  # no student to compare with: each conv's own weight gives its output channels
        shapes = {}
        for p in _conv_prefixes(nb):
            w = arrays.get(f"{p}.w")
            shapes[_float_name(p)] = w.shape if w is not None and w.ndim == 4 else (1, 1, 3, 3)
    want: dict[str, np.ndarray] = {"lut": np.zeros(gold.LUT_SIZE, np.int64)}
    for p in _conv_prefixes(nb):
        ws = tuple(shapes[_float_name(p)])
        want[f"{p}.w"] = np.zeros(ws, np.int64)
        for f in ("b", "mult", "shift"):
            want[f"{p}.{f}"] = np.zeros(ws[:1], np.int64)
    check_state(arrays, want, path)
    for k, (lo, hi) in {".w": (-128, 127), ".shift": (0, 62), ".mult": (0, (1 << 31) - 1),
                        ".b": (-(1 << 31), (1 << 31) - 1)}.items():
        for name, a in arrays.items():
            if name.endswith(k) and a.size and (a.min() < lo or a.max() > hi):
                raise HwsimError(f"{path}: array {name!r} holds values outside {lo} … {hi}")

    def conv(prefix):
        return gold.ConvInt(arrays[f"{prefix}.w"], arrays[f"{prefix}.b"], arrays[f"{prefix}.mult"],
                            arrays[f"{prefix}.shift"], scal[f"{prefix}.z_in"],
                            scal[f"{prefix}.z_out"])

    blocks = tuple(gold.SpabInt(conv(f"block{i}.c1"), conv(f"block{i}.c2"),
                                **{f: scal[f"block{i}.{f}"] for f in _SPAB_FIELDS})
                   for i in range(nb))
    return gold.IntModel(scal["s_in"], scal["z_in"], conv("head"), blocks, conv("tail"),
                         conv("up"), scal["rf"], scal["rs"], scal["s_out"], scal["z_out"],
                         arrays["lut"])


def _float_name(prefix: str) -> str:
    """``block3.c1`` → ``blocks.3.c1.weight`` (the float student's name for that conv)."""
    if prefix.startswith("block"):
        i, c = prefix[len("block"):].split(".")
        return f"blocks.{i}.{c}.weight"
    return f"{prefix}.weight"


def _run_schema() -> dict:
    from hwsim.loading import fields_of, integer, list_of, maybe, number, text

    return {"geometry": fields_of(Geometry, bs_ant=integer(1, 1024), ue_ant=integer(1, 64),
                                  subcarriers=integer(1, 8192)),
            "config": fields_of(StudentConfig, feat=integer(1, 512), mid=integer(1, 512),
                                down=integer(1, 512), blocks=integer(1, 64),
                                rf=integer(1, 64), rs=integer(1, 64), gain=integer(1, 64)),
            "epochs": integer(0), "loss_db": list_of(number()),
            "teacher_epochs": maybe(integer(0)), "loss": maybe(text(*LOSSES))}


def _read_run_meta(run: Path) -> tuple[dict, Geometry, StudentConfig]:
    """``run.json`` checked (keys, types, ranges) with the geometry and the plain student it
    describes."""
    from hwsim.loading import build, check_meta, read_json

    f = Path(run) / "run.json"
    meta = check_meta(read_json(f, "run file"), _run_schema(), f)
    geom = build(Geometry, meta["geometry"], f, "geometry")
    cfg = build(StudentConfig, {**meta["config"], "conv3xc": False}, f, "config")
    return meta, geom, cfg


# ---- train -------------------------------------------------------------------------------
def _load_float(run: Path) -> tuple[dict, SwiftChannelNet]:
    """An earlier run's meta and its re-parameterized float student (``run.json`` and the
    tensors checked before use)."""
    from hwsim.loading import load_weights

    run = Path(run)
    if not (run / "run.json").is_file() or not (run / "float.safetensors").is_file():
        raise HwsimError(f"{run} is not a SwiftChannel run folder with a float student "
                         f"(no run.json or float.safetensors)")
    meta, _, cfg = _read_run_meta(run)
    net = load_weights(lambda: SwiftChannelNet(cfg), run / "float.safetensors", "float student")
    return meta, net.eval()


def train_run(out: Path, geom: Geometry, n_train: int = 2048, epochs: int = 20,
              qat_epochs: int = QAT_EPOCHS, seed: int = 0, lr: float = 3e-3,
              teacher_epochs: int = 0, distill: float = 0.5, qat_lr: float = QAT_LR,
              qat_snrs: tuple[float, ...] = QAT_SNRS_DB, from_float: Path | None = None,
              qat_loss: str = QAT_LOSS, loss: str = "nmse", qat_distill: float = 0.0,
              log: Callable[[str], None] = print, student: dict | None = None) -> dict:
    """Float training (Conv3XC) → re-parameterization → QAT (``qat_epochs`` at ``qat_lr``, noise
    at ``qat_snrs``) → run folder. ``loss`` and ``qat_loss`` name the float and QAT training
    losses (:data:`~models.swiftchannel.train.LOSSES`).

    With ``teacher_epochs > 0`` a teacher (:meth:`StudentConfig.teacher`) is trained first and
    the student's loss adds ``distill ×`` its NMSE to the teacher's output. With ``from_float``
    (an earlier run folder) its float student and geometry are used and only the QAT, the
    exports and the integer model are made (``geom``, ``epochs`` and the teacher are ignored).
    ``qat_distill > 0`` adds ``qat_distill ×`` :func:`~models.swiftchannel.train.excess_loss`
    of the QAT model against the re-parameterized float student to the QAT loss.
    ``student`` overrides fields of the geometry's :class:`StudentConfig` (``blocks``,
    ``feat``…) of a newly trained float student.
    """
    from safetensors.torch import save_file

    if n_train < 32:
        raise HwsimError(f"need at least 32 training samples, not {n_train}")
    if qat_epochs < 1:
        raise HwsimError(f"qat epochs must be at least 1, not {qat_epochs}")
    if not qat_lr > 0:
        raise HwsimError(f"qat learning rate must be positive, not {qat_lr}")
    for what, name in (("QAT loss", qat_loss), ("loss", loss)):
        if name not in LOSSES:
            raise HwsimError(f"unknown {what} {name!r}: choose one of {', '.join(LOSSES)}")
    if not qat_distill >= 0:
        raise HwsimError(f"QAT distillation weight must be 0 or more, not {qat_distill}")
    if not qat_snrs:
        raise HwsimError("need at least one QAT SNR")
    float_meta = None
    if from_float is not None:
        float_meta, plain = _load_float(from_float)
        geom = _read_run_meta(from_float)[1]
    cfg = config_for(geom, **(student if from_float is None and student else {}))
    log(f"generating {n_train} Sionna CDL-{geom.cdl_model} channels {geom.full_shape} …")
    data = make_set(geom, n_train, seed=seed)
    if float_meta is None:
        teacher = None
        if teacher_epochs > 0:
            log("teacher (24 channels, 6 blocks):")
            tnet = SwiftChannelNet(StudentConfig.teacher(cfg.rf, cfg.rs))
            train(tnet, data, teacher_epochs, lr=lr, seed=seed + 2, log=log)
            teacher = reparameterize(tnet)
        net = SwiftChannelNet(cfg)
        log(f"float student (Conv3XC, {loss} loss):")
        hist = train(net, data, epochs, lr=lr, seed=seed, log=log, teacher=teacher,
                     distill=distill if teacher is not None else 0.0, loss_fn=LOSSES[loss])
        plain = reparameterize(net)
        loss_db = [float(10 * np.log10(v)) for v in hist]
    else:
        log(f"float student from {from_float}")
        epochs, teacher_epochs = float_meta["epochs"], float_meta.get("teacher_epochs", 0)
        loss = float_meta.get("loss", "nmse")  # runs before the option trained with nmse
        loss_db = float_meta["loss_db"]
    distilled = f" + {qat_distill:g} × excess over float" if qat_distill > 0 else ""
    log(f"QAT int8 ({qat_epochs} epochs, lr {qat_lr:g}, {qat_loss} loss{distilled}, SNRs "
        f"{list(qat_snrs)} dB), from the re-parameterized student:")
    q = QuantSwiftChannel.from_float(plain)
    qdata = ChannelSet(geom, data.H, np.resize(np.asarray(qat_snrs, np.float64), len(data.H)))
    qhist = train(q, qdata, qat_epochs, lr=qat_lr, seed=seed + 1, log=log,
                  loss_fn=LOSSES[qat_loss], teacher=plain if qat_distill > 0 else None,
                  distill=qat_distill, excess=True)
    example = torch.from_numpy(qdata.inputs(np.random.default_rng(seed))[:4])
    im = int_model(q, example)
    lm = Lmmse(geom, data.H)
    meta = {"geometry": geom.to_dict(), "config": dataclasses.asdict(cfg), "seed": seed,
            "n_train": n_train, "epochs": epochs, "loss": loss, "qat_epochs": qat_epochs,
            "qat_lr": qat_lr, "qat_loss": qat_loss, "qat_distill": qat_distill,
            "qat_snrs_db": [float(v) for v in qat_snrs], "teacher_epochs": teacher_epochs,
            "from_float": None if from_float is None else str(from_float),
            "loss_db": loss_db, "qat_loss_db": [float(10 * np.log10(v)) for v in qhist]}
    with staged_dir(out) as stage:
        save_file({k: v.contiguous() for k, v in plain.state_dict().items()},
                  str(stage / "float.safetensors"))
        save_int_model(im, stage / "int8.safetensors")
        np.savez(stage / "lmmse.npz", R_hp=lm.R_hp.astype(np.complex64),
                 R_pp=lm.R_pp.astype(np.complex64), pidx=lm._pidx)
        meta["output_scale"] = im.s_out
        meta["onnx"] = _export_onnx(q, im, example.numpy(), stage)
        atomic_write_text(stage / "run.json", json.dumps(meta, indent=1) + "\n")
    log(f"wrote {out}")
    return meta


def _export_onnx(q: QuantSwiftChannel, im: gold.IntModel, x: np.ndarray, folder: Path) -> dict:
    """The integer ONNX graphs, executed (onnxruntime, qonnx) and compared code for code with
    the QAT model and the golden on ``x``."""
    from .onnx_int import export_int_onnx, run_qcdq_codes, run_qonnx_codes

    paths = export_int_onnx(im, x.shape[2], x.shape[3], folder)
    want = q.output_codes(torch.from_numpy(x))
    gold_codes = gold.swiftchannel_int(gold.quantize_input(x, im), im)
    qc = run_qcdq_codes(paths["qcdq"], x)
    qo = run_qonnx_codes(paths["qonnx"], gold.quantize_input(x, im))
    return {"samples": len(x), "codes": int(want.size),
            "golden_mismatches": int(np.sum(gold_codes != want)),
            "qcdq_mismatches": int(np.sum(qc != want)),
            "qonnx_mismatches": int(np.sum(qo != want))}


def load_run(run: Path) -> tuple[Geometry, SwiftChannelNet, gold.IntModel, Lmmse]:
    run = Path(run)
    if not (run / "run.json").is_file():
        raise HwsimError(f"{run} is not a SwiftChannel run folder (no run.json); "
                         f"make one with `hwsim swiftchannel train`")
    _, net = _load_float(run)
    _, geom, cfg = _read_run_meta(run)
    im = load_int_model(run / "int8.safetensors", cfg)
    f = run / "lmmse.npz"
    if not f.is_file():
        raise HwsimError(f"{run} has no LMMSE covariance ({f.name} missing)")
    return geom, net, im, Lmmse.from_file(f, geom)


# ---- evaluate ----------------------------------------------------------------------------
def int8_predict(im: gold.IntModel, X: np.ndarray) -> np.ndarray:
    return gold.dequantize_output(gold.swiftchannel_int(gold.quantize_input(X, im), im), im)


def evaluate(run: Path, snrs: list[float], n_test: int = 256, seed: int = 1000,
             out: Path | None = None) -> dict:
    """NMSE (dB) per SNR of LS (``ls``: edge pilots held, hwsim's baseline; ``ls_sionna``:
    extrapolated past the edge pilots as Sionna's linear interpolator does), LMMSE, float and
    int8 students on fresh test channels."""
    if n_test < 1:
        raise HwsimError(f"test samples must be positive, not {n_test}")
    geom, net, im, lm = load_run(run)
    from models.channels import generate_channels

    H = generate_channels(geom, n_test, TEST_SPEED_RANGE_KMH, seed=seed)
    rng = np.random.default_rng(seed)
    rows = []
    for snr in snrs:
        Y = ls_observation(H, geom, snr, rng)
        X = pack_real(Y)
        rows.append({
            "snr_db": snr,
            "ls": nmse_db(H, ls_interpolate(Y, geom)),
            "ls_sionna": nmse_db(H, ls_interpolate(Y, geom, extrapolate=True)),
            "lmmse": nmse_db(H, lm.estimate(Y, snr)),
            "float": nmse_db(H, unpack_real(predict(net, X))),
            "int8": nmse_db(H, unpack_real(int8_predict(im, X))),
        })
    result = {"run": str(run), "geometry": geom.to_dict(), "n_test": n_test, "rows": rows}
    if out is not None:
        with staged_dir(out) as stage:
            _write_csv(rows, stage / "nmse.csv")
            _plot(rows, geom, stage / "nmse.png")
        result["csv"], result["png"] = str(out / "nmse.csv"), str(out / "nmse.png")
    return result


def _write_csv(rows: list[dict], path: Path) -> None:
    lines = ["snr_db,ls_db,lmmse_db,float_db,int8_db,ls_sionna_db"]
    lines += [f"{r['snr_db']:g},{r['ls']:.4f},{r['lmmse']:.4f},{r['float']:.4f},{r['int8']:.4f},"
              f"{r['ls_sionna']:.4f}" for r in rows]
    path.write_text("\n".join(lines) + "\n")


def _plot(rows: list[dict], geom: Geometry, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    snr = [r["snr_db"] for r in rows]
    for key, label, style in (("ls", "LS + linear interp. (edges held)", "o--"),
                              ("ls_sionna", "LS + linear interp. (edges extrapolated, Sionna)",
                               "x:"),
                              ("lmmse", "LMMSE", "s--"),
                              ("float", "SwiftChannel float", "^-"),
                              ("int8", "SwiftChannel int8", "v-")):
        ax.plot(snr, [r[key] for r in rows], style, label=label)
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel("NMSE (dB)")
    F = geom.subcarriers
    ax.set_title(f"CDL-{geom.cdl_model}, {geom.bs_ant}×{geom.ue_ant} ant., {F} subcarriers")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
