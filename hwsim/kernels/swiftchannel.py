"""Registry entries and stimulus of the SwiftChannel kernels (conv engine, SPAB gate).

From the CLI the layers get random int8 weights (``--weights-seed``); the tests and the benchmark build
the same kernels from a trained int8 student and real channel tensors
(:func:`conv_params_from_model`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.golden.swiftchannel import conv as conv_spec
from hwsim.golden.swiftchannel import gate as gate_spec
from hwsim.golden.swiftchannel import network as sc
from hwsim.golden.swiftchannel import pipeline as pipe_spec

from . import CliParam, Kernel
from ._contract import interval, latency, one_at_a_time


def conv_cli_params(ic: int = 12, oc: int = 8, height: int = 8, width: int = 8, k: int = 3,
                    ocp: int = 8, weights_seed: int = 0) -> conv_spec.ConvEngineParams:
    """A conv layer with random int8 weights, biases and requantizers typical of the student
    (rescale factors ``M · 2**-S`` between 2**-12 and 2**-6)."""
    rng = np.random.default_rng(weights_seed)
    n = max(oc, 0)
    return conv_spec.ConvEngineParams(
        ic=ic, oc=oc, height=height, width=width, k=k, ocp=ocp,
        weights=rng.integers(-128, 128, max(oc * ic * k * k, 0)),
        bias=rng.integers(-4000, 4000, n), mults=rng.integers(1 << 15, 1 << 16, n),
        shifts=rng.integers(22, 28, n),
        z_in=int(rng.integers(0, 256)), z_out=int(rng.integers(0, 256)))


def _random_gate(rng) -> dict:
    """Random SPAB-gate requantizers: the LUT index, the fused sum × gate's two multipliers
    (input scales 0.02 … 0.1, output scale 0.01 … 0.05)."""
    lut_mult, lut_shift = sc.lut_multiplier(rng.uniform(0.02, 0.1))
    mx, mc, s = sc.skip_multipliers(rng.uniform(0.02, 0.1), rng.uniform(0.02, 0.1),
                                    rng.uniform(0.01, 0.05))
    return {"lut_mult": lut_mult, "lut_shift": lut_shift, "sum_mult_x": mx, "sum_mult_c": mc,
            "sum_shift": s, "z_out": int(rng.integers(60, 200))}


def gate_cli_params(lanes: int = 4, weights_seed: int = 0) -> gate_spec.GateParams:
    rng = np.random.default_rng(weights_seed)
    return gate_spec.GateParams(lanes=lanes, z_x=int(rng.integers(60, 200)),
                                z_c=int(rng.integers(60, 200)), **_random_gate(rng))


def random_int_model(seed: int = 0, feat: int = 12, mid: int = 8, down: int = 4, blocks: int = 4,
                     rf: int = 4, rs: int = 1) -> sc.IntModel:
    """An int8 student with random codes (rescales chosen so activations stay in range)."""
    rng = np.random.default_rng(seed)

    def conv(ic, oc, k, z_in, relu=False):
        scale = 40 / (np.sqrt(ic * k * k) * 128 * 70)
        ms = [sc.requant_multiplier(scale * r) for r in rng.uniform(0.5, 1.5, oc)]
        return sc.ConvInt(rng.integers(-128, 128, (oc, ic, k, k)), rng.integers(-2000, 2000, oc),
                          np.array([m for m, _ in ms]), np.array([s for _, s in ms]), z_in,
                          0 if relu else int(rng.integers(60, 200)))

    head = conv(2, feat, 3, int(rng.integers(60, 200)))
    blks, z = [], head.z_out
    for _ in range(blocks):
        c1 = conv(feat, mid, 3, z, relu=True)
        c2 = conv(mid, feat, 3, 0)
        blk = sc.SpabInt(c1, c2, **_random_gate(rng))
        blks.append(blk)
        z = blk.z_out
    tail = conv(feat, down, 3, z)
    up = conv(down, 2 * rf * rs, 1, tail.z_out)
    return sc.IntModel(1.0, head.z_in, head, tuple(blks), tail, up, rf, rs, 1.0, up.z_out,
                       sc.sigmoid_lut())


def pipeline_cli_params(height: int = 4, width: int = 8, taps: int = 3, blocks: int = 4,
                        weights_seed: int = 0) -> pipe_spec.PipelineParams:
    """The composed student with random int8 codes (the deployed widths: 12 / 8 / 4, rf = 4)."""
    return pipe_spec.PipelineParams.from_model(random_int_model(weights_seed, blocks=blocks),
                                               height, width, taps=taps)


def _manifest_params(p) -> dict:
    return {f.name: getattr(p, f.name) for f in dataclasses.fields(p)
            if not isinstance(getattr(p, f.name), tuple)}


_CONSTANTS = ("weights, bias and each output channel's M and S are elaboration constants "
              "(params; no port): the emitted module computes one fixed layer")


def conv_manifest(p: conv_spec.ConvEngineParams) -> dict:
    lat = latency(conv_spec.frame_cycles, p, unit="frame", first="x beat", last="y beat")
    return {"kernel": "swiftchannel-conv", "params": _manifest_params(p),
            "acc_width": p.acc_width,
            "numeric": {
                "function": "hwsim.golden.swiftchannel.conv.conv_engine (hwsim.golden."
                            "swiftchannel.conv_int): acc[o] = bias[o] + sum w[o, i, dy, dx] * "
                            "(x[i, h+dy, w+dx] - z_in) (0 outside the image: zero padding, "
                            "stride 1); y = clip((acc * M[o] + (z_out << S[o]) + "
                            "2**(S[o]-1)) >> S[o], 0, 255)",
                "rounding": "half_up", "overflow": "clip to uint8 [0, 255]",
                "constants": _CONSTANTS, "z_in": p.z_in, "z_out": p.z_out,
                "M_width": sc.MULT_BITS, "S_max": sc.MAX_SHIFT,
                "weight": "int8 codes", "acc": {"width": p.acc_width, "signed": True},
            },
            "latency": lat,
            "interval": one_at_a_time(lat, unit="frame",
                                      overlap="the line buffer runs up to three rows ahead"),
            "cycles": {"frame": conv_spec.frame_cycles(p)}}


def gate_manifest(p: gate_spec.GateParams) -> dict:
    return {"kernel": "swiftchannel-gate", "params": _manifest_params(p),
            "numeric": {
                "function": "hwsim.golden.swiftchannel.gate.gate (hwsim.golden.swiftchannel.network."
                            "spab_gate): sum = (x - z_x) * sum_mult_x + (c - z_c) * sum_mult_c "
                            "(exact); g = lut[clip(floor((c - z_c) * lut_mult * 2**-lut_shift) + "
                            "256, 0, 511)] (int8 codes of sigmoid - 0.5, 512 entries, hwsim."
                            "golden.swiftchannel.sigmoid_lut); y = clip((sum * g + (z_out << "
                            "sum_shift) + 2**(sum_shift-1)) >> sum_shift, 0, 255)",
                "rounding": "half_up", "overflow": "clip to uint8 [0, 255]",
                "constants": "zero points, multipliers and shifts are elaboration constants "
                             "(params; no port)",
            },
            "latency": latency(gate_spec.stream_cycles, p, 1, unit="beat", first="x beat",
                               last="y beat"),
            "interval": interval(gate_spec.interval_cycles, p, unit="beat"),
            "cycles": {"beat": gate_spec.stream_cycles(p, 1)}}


def pipeline_manifest(p: pipe_spec.PipelineParams) -> dict:
    lat = latency(pipe_spec.frame_cycles, p, unit="frame", first="x beat", last="y beat")
    return {"kernel": "swiftchannel-pipeline",
            "params": {k: getattr(p, k) for k in ("height", "width", "taps", "skip_depth", "rf",
                                                   "rs", "blocks")},
            "macs_per_cycle": p.macs_per_cycle(),
            "numeric": {
                "function": "hwsim.golden.swiftchannel.pipeline.pipeline (hwsim.golden."
                            "swiftchannel.swiftchannel_int): head conv, blocks x [c1, c2, "
                            "SPAB gate on (x, c2)], tail conv, 1x1 up conv, each layer as "
                            "swiftchannel-conv and swiftchannel-gate state it",
                "rounding": "half_up at every requantizer", "overflow": "clip to uint8",
                "constants": "every layer's weights, biases, multipliers, shifts and zero "
                             "points are elaboration constants (params; no port)",
                "y_beat": "element c*rf*rs + i*rs + j = output pixel (rf*h + i, rs*w + j) of "
                          "channel c (PixelShuffle)",
            },
            "latency": lat,
            "interval": one_at_a_time(lat, unit="frame",
                                      overlap="every layer takes the next frame's pixels as "
                                              "its line buffer frees"),
            "cycles": {"frame": pipe_spec.frame_cycles(p)}}


def pipeline_cases(p: pipe_spec.PipelineParams, seed: int = 0, quick: bool = False) -> list[dict]:
    rng = np.random.default_rng(seed)
    shape = (p.in_ch, p.height, p.width)
    out = [{"name": "random", "arrays": {"X": rng.integers(0, 256, shape)}}]
    if not quick:
        out.append({"name": "idle_backpressure", "idle": 0.3, "stall": 0.4, "seed": seed + 7,
                    "arrays": {"X": rng.integers(0, 256, shape)}})
    return out


def conv_cases(p: conv_spec.ConvEngineParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """Random image (timed), extreme codes (timed), random image with idle input and stalls."""
    rng = np.random.default_rng(seed)
    shape = (p.ic, p.height, p.width)
    out = [{"name": "random", "arrays": {"X": rng.integers(0, 256, shape)}}]
    if not quick:
        ext = np.where(rng.random(shape) < 0.5, 0, 255)
        out.append({"name": "extremes", "arrays": {"X": ext}})
    out.append({"name": "idle_backpressure", "idle": 0.3, "stall": 0.4, "seed": seed + 7,
                "arrays": {"X": rng.integers(0, 256, shape)}})
    return out


def gate_cases(p: gate_spec.GateParams, seed: int = 0, quick: bool = False) -> list[dict]:
    rng = np.random.default_rng(seed)
    n = 64 * p.lanes
    out = [{"name": "random", "arrays": {"X": rng.integers(0, 256, n), "C": rng.integers(0, 256, n)}}]
    if not quick:
        grid = np.stack(np.meshgrid(np.arange(0, 256, 5), np.arange(0, 256, 5)), -1).reshape(-1, 2)
        grid = grid[: len(grid) // p.lanes * p.lanes]
        out.append({"name": "code_grid", "arrays": {"X": grid[:, 0], "C": grid[:, 1]}})
    out.append({"name": "idle_backpressure", "idle": 0.3, "stall": 0.4, "seed": seed + 7,
                "arrays": {"X": rng.integers(0, 256, n), "C": rng.integers(0, 256, n)}})
    return out


def conv_params_from_model(conv: sc.ConvInt, height: int, width: int,
                           ocp: int | None = None) -> conv_spec.ConvEngineParams:
    return conv_spec.ConvEngineParams.from_conv(conv, height, width, ocp)


CONV = Kernel(
    name="swiftchannel-conv",
    top="swiftchannel_conv",
    summary="SwiftChannel int8 conv engine: line buffer, ic×ocp MACs per cycle, requantizer",
    params_cls=conv_cli_params,
    cli_params=(
        CliParam("ic", int, 12, "input channels"),
        CliParam("oc", int, 8, "output channels"),
        CliParam("height", int, 8, "image rows"),
        CliParam("width", int, 8, "image columns"),
        CliParam("k", int, 3, "kernel size (3 or 1)"),
        CliParam("ocp", int, 8, "output channels computed in parallel (divides oc)"),
        CliParam("weights_seed", int, 0, "seed of the random weights"),
    ),
    component_path="rtl.swiftchannel.conv:SwiftChannelConv",
    testbench="hwsim.sim.tb_swiftchannel_conv",
    golden="hwsim.golden.swiftchannel.conv:conv_engine",
    cycles=conv_spec.frame_cycles,
    actions=lambda p: conv_spec.action_counts(p, 1),
    manifest=conv_manifest,
    cases=conv_cases,
    test_params=(dict(ic=2, oc=2, height=3, width=3, k=3, ocp=2),
                 dict(ic=3, oc=4, height=2, width=3, k=1, ocp=2)),
)

GATE = Kernel(
    name="swiftchannel-gate",
    top="swiftchannel_gate",
    summary="SwiftChannel SPAB gating unit: wide skip sum, 512-entry sigmoid LUT, one requantized product",
    params_cls=gate_cli_params,
    cli_params=(CliParam("lanes", int, 4, "elements per beat"),
                CliParam("weights_seed", int, 0, "seed of the random zero points and multipliers")),
    component_path="rtl.swiftchannel.gate:SwiftChannelGate",
    testbench="hwsim.sim.tb_swiftchannel_gate",
    golden="hwsim.golden.swiftchannel.gate:gate",
    cycles=lambda p: gate_spec.stream_cycles(p, 1),
    actions=lambda p: gate_spec.action_counts(p, 1),
    manifest=gate_manifest,
    cases=gate_cases,
    test_params=(dict(lanes=2),),
)


PIPELINE = Kernel(
    name="swiftchannel-pipeline",
    top="swiftchannel_pipeline",
    summary="SwiftChannel student composed: conv engines, skip FIFOs, SPAB gates as one dataflow",
    params_cls=pipeline_cli_params,
    cli_params=(
        CliParam("height", int, 4, "input rows"),
        CliParam("width", int, 8, "input columns"),
        CliParam("taps", int, 3, "3×3 taps per cycle in every conv engine (1, 3 or 9)"),
        CliParam("blocks", int, 4, "SPAB blocks"),
        CliParam("weights_seed", int, 0, "seed of the random int8 codes"),
    ),
    component_path="rtl.swiftchannel.pipeline:SwiftChannelPipeline",
    testbench="hwsim.sim.tb_swiftchannel_pipeline",
    golden="hwsim.golden.swiftchannel.pipeline:pipeline",
    cycles=pipe_spec.frame_cycles,
    actions=pipe_spec.action_counts,
    parts=("swiftchannel-conv", "swiftchannel-gate"),
    manifest=pipeline_manifest,
    cases=pipeline_cases,
    test_params=(dict(height=2, width=4, taps=3, blocks=1),),
)


def student_layers(im: sc.IntModel, x_codes: np.ndarray, ocp: int | None = None,
                   gate_lanes: int | None = None, taps: int = 1) -> list[dict]:
    """Every hardware layer of the int8 student with its real input codes, in execution order.

    ``x_codes``: one input (2, H, W) of uint8 codes (e.g. a quantized LS estimate of a Sionna
    channel). Each entry: ``name``, ``kernel`` (CONV or GATE), ``params`` and ``arrays`` (one
    stimulus case), activations computed by the golden functions.
    """
    x = np.asarray(x_codes)[None]
    _, _, H, W = x.shape
    out = []

    def conv(name, c, inp):
        oc = c.w.shape[0]
        p = conv_spec.ConvEngineParams.from_conv(c, H, W, ocp if ocp and oc % ocp == 0 else oc, taps)
        out.append({"name": name, "kernel": CONV, "params": p, "arrays": {"X": inp[0]}})
        return sc.conv_int(inp, c)

    y = conv("head", im.head, x)
    z = im.head.z_out
    for i, blk in enumerate(im.blocks):
        c1 = conv(f"block{i}.c1", blk.c1, y)
        c2 = conv(f"block{i}.c2", blk.c2, c1)
        ch = y.shape[1]
        lanes = gate_lanes or ch
        gp = gate_spec.GateParams.from_block(blk, z, lanes)
        # stream order of the gate: pixel-major, channels within a beat
        out.append({"name": f"block{i}.gate", "kernel": GATE, "params": gp, "arrays": {
            "X": y[0].reshape(ch, -1).T.ravel(), "C": c2[0].reshape(ch, -1).T.ravel()}})
        y = sc.spab_gate(y, c2, blk, im.lut, z)
        z = blk.z_out
    y = conv("tail", im.tail, y)
    conv("up", im.up, y)
    return out


def layer_cycles(layer: dict) -> int:
    """Cycles of one layer (first input beat to last output beat) by its kernel's formula."""
    p = layer["params"]
    if layer["kernel"] is CONV:
        return conv_spec.frame_cycles(p)
    return gate_spec.stream_cycles(p, len(layer["arrays"]["X"]) // p.lanes)
