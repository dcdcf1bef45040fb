"""The composed SwiftChannel student in hardware: parameters, golden function, cycle formula.

One dataflow pipeline computes the whole int8 student
(:func:`hwsim.golden.swiftchannel.network.swiftchannel_int`) on one low-resolution LS image streamed
in raster order (one pixel, 2 uint8 codes, per beat):

    head conv → 4 × [fork → c1 conv → c2 conv → join with the skip FIFO → SPAB gate] → tail conv
    → up conv (1×1) → output stream

Every layer is its own engine (:class:`rtl.swiftchannel.conv.SwiftChannelConv` with all output
channels in parallel and ``taps`` taps of the 3×3 window per cycle;
:class:`rtl.swiftchannel.gate.SwiftChannelGate` with one pixel per beat) and all run at once,
each consuming its predecessor's stream as it arrives; a SPAB's input also enters a skip FIFO
of :attr:`PipelineParams.skip_depth` pixels, from which the gate takes ``x`` when the second
conv delivers ``c2`` for the same pixel. The output stream carries the up conv's ``2·rf·rs``
codes per low-resolution pixel; the PixelShuffle is the order in which they are written out
(no arithmetic):
``out[c, rf·h + i, rs·w + j] = beat[h·W + w][c·rf·rs + i·rs + j]``.

Timing (no idle input, no back-pressure; proven by the simulations in
``tests/rtl/test_swiftchannel_pipeline.py`` and ``tests/sim/test_swiftchannel_cocotb.py``).
A 3×3 engine with ``S = k²/taps`` cycles per pixel issues pixel ``j`` at
``max(a[min(j + W + 1, P − 1)] + 1, issue[j − 1] + S)`` (``a[q]``: the cycle its input pixel
``q`` arrived) and delivers it ``S + 2`` cycles later; a 1×1 engine uses ``a[j]``; a gate
delivers 2 cycles after both inputs are there. :func:`arrival_cycles` runs this recurrence
through the layers; with the same ``S`` in every 3×3 layer it has the closed form
(:func:`frame_cycles`, ``B`` blocks, ``P = H·W`` pixels)::

    cycles = W + 9 + S·P + (2B + 1)·(S·(W + 2) + 3) + 2B

from the first input beat to the last output beat, both counted: the head's window start
(``W + 2``) and the ``S·P`` cycles of the slowest layer are paid once, every further 3×3 layer
adds its window lag of ``W + 1`` pixels plus ``S + 2`` pipeline cycles, each gate 2 cycles, the
1×1 up conv 4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError, check_ints
from hwsim.golden.swiftchannel import conv as conv_spec
from hwsim.golden.swiftchannel import gate as gate_spec
from hwsim.golden.swiftchannel import network as sc
from hwsim.golden.swiftchannel.conv import ConvEngineParams
from hwsim.golden.swiftchannel.gate import GateParams

__all__ = ["PipelineParams", "arrival_cycles", "frame_cycles", "pipeline", "skip_depth_for",
           "storage_bits"]

_GATE_FIELDS = ("z_x", "z_c", "lut_mult", "lut_shift", "sum_mult_x", "sum_mult_c", "sum_shift",
                "z_out")


def skip_depth_for(width: int) -> int:
    """Skip-FIFO depth: the gate needs ``x[p]`` when ``c2[p]`` arrives, which takes the two
    convs' window lags (``2W + 2`` pixels) plus their pipelines; ``2W + 16`` leaves room so the
    FIFO never throttles the fork (tested down to ``taps = 9``, one pixel per cycle)."""
    return 2 * int(width) + 16


def _conv_dict(c: sc.ConvInt) -> dict:
    return {"w": [int(v) for v in np.asarray(c.w).ravel()], "shape": list(np.asarray(c.w).shape),
            "b": [int(v) for v in np.asarray(c.b).ravel()],
            "mult": [int(v) for v in np.asarray(c.mult).ravel()],
            "shift": [int(v) for v in np.asarray(c.shift).ravel()],
            "z_in": int(c.z_in), "z_out": int(c.z_out)}


def _conv_from(d: dict) -> sc.ConvInt:
    return sc.ConvInt(np.array(d["w"], np.int64).reshape(d["shape"]), np.array(d["b"], np.int64),
                      np.array(d["mult"], np.int64), np.array(d["shift"], np.int64),
                      int(d["z_in"]), int(d["z_out"]))


@dataclass(frozen=True)
class PipelineParams:
    """The whole student's integer constants, the image size and the engines' parallelism.

    ``convs``: head, (c1, c2) per block, tail, up as JSON-able dicts (``w`` flat, ``shape``,
    ``b``, ``mult``, ``shift``, ``z_in``, ``z_out``); ``gates``: one dict of
    :class:`~hwsim.golden.swiftchannel.gate.GateParams` fields (without ``lanes``) per block.
    Build it with :meth:`from_model`.
    """

    height: int
    width: int
    taps: int
    skip_depth: int
    rf: int
    rs: int
    convs: tuple
    gates: tuple

    def __post_init__(self):
        check_ints(self, "swiftchannel-pipeline",
                   ("height", "width", "taps", "skip_depth", "rf", "rs"))
        object.__setattr__(self, "convs", tuple(dict(c) for c in self.convs))
        object.__setattr__(self, "gates", tuple(dict(g) for g in self.gates))
        if len(self.convs) != 2 * len(self.gates) + 3:
            raise HwsimError("swiftchannel-pipeline needs head, two convs per block, tail and up")
        if self.skip_depth < 2 * self.width + 3:
            raise HwsimError(f"swiftchannel-pipeline skip_depth must be at least 2W + 3 = "
                             f"{2 * self.width + 3} (the gate waits for c2 two window lags later)")
        engines = self.conv_engines()  # validates every layer
        for e in engines[:-1]:
            if e.k != 3:
                raise HwsimError("swiftchannel-pipeline: every layer but the last must be 3×3")
        if engines[-1].k != 1:
            raise HwsimError("swiftchannel-pipeline: the last (up) layer must be 1×1")
        self.gate_params()

    @classmethod
    def from_model(cls, m: sc.IntModel, height: int, width: int, taps: int = 3,
                   skip_depth: int | None = None) -> PipelineParams:
        convs = [m.head, *(c for b in m.blocks for c in (b.c1, b.c2)), m.tail, m.up]
        gates = []
        z = m.head.z_out
        for b in m.blocks:
            gp = GateParams.from_block(b, z, 1)
            gates.append({f: int(getattr(gp, f)) for f in _GATE_FIELDS})
            z = b.z_out
        return cls(height=int(height), width=int(width), taps=int(taps),
                   skip_depth=int(skip_depth or skip_depth_for(width)), rf=int(m.rf), rs=int(m.rs),
                   convs=tuple(_conv_dict(c) for c in convs), gates=tuple(gates))

    def conv_engines(self) -> list[ConvEngineParams]:
        """The engines in pipeline order (all output channels in parallel)."""
        return [ConvEngineParams.from_conv(_conv_from(d), self.height, self.width, taps=self.taps)
                for d in self.convs]

    def gate_params(self) -> list[GateParams]:
        feat = len(self.convs[0]["b"])
        return [GateParams(lanes=feat, **g) for g in self.gates]

    def int_model(self) -> sc.IntModel:
        convs = [_conv_from(d) for d in self.convs]
        blocks = tuple(sc.SpabInt(convs[1 + 2 * i], convs[2 + 2 * i],
                                  **{f: g[f] for f in _GATE_FIELDS[2:]})
                       for i, g in enumerate(self.gates))
        return sc.IntModel(s_in=1.0, z_in=int(self.convs[0]["z_in"]), head=convs[0], blocks=blocks,
                           tail=convs[-2], up=convs[-1], rf=self.rf, rs=self.rs, s_out=1.0,
                           z_out=int(self.convs[-1]["z_out"]), lut=sc.sigmoid_lut())

    @property
    def blocks(self) -> int:
        return len(self.gates)

    @property
    def pixels(self) -> int:
        return self.height * self.width

    @property
    def in_ch(self) -> int:
        return self.convs[0]["shape"][1]

    @property
    def out_ch(self) -> int:
        return self.convs[-1]["shape"][0]

    @property
    def pixel_cycles(self) -> int:
        """Initiation interval: the slowest engine's cycles per pixel."""
        return max(e.pixel_cycles for e in self.conv_engines())

    def macs_per_cycle(self) -> int:
        return sum(e.ic * e.ocp * e.taps for e in self.conv_engines())


def pipeline(x, p: PipelineParams) -> np.ndarray:
    """Golden: input codes (2, H, W) → output beats (H·W, 2·rf·rs) in stream order."""
    x = np.asarray(x)
    if x.shape != (p.in_ch, p.height, p.width):
        raise HwsimError(f"swiftchannel-pipeline input must be ({p.in_ch}, {p.height}, {p.width}), "
                         f"got {x.shape}")
    y = sc.student_features(x[None], p.int_model())[0]  # (out_ch, H, W)
    return y.reshape(p.out_ch, -1).T


def arrival_cycles(p: PipelineParams) -> np.ndarray:
    """Output cycle of every output pixel (input pixel ``q`` arrives in cycle ``q``), by the
    per-engine timing rules above (no stalls)."""
    P, W = p.pixels, p.width
    a = np.arange(P, dtype=np.int64)
    engines = p.conv_engines()

    def conv(a, e: ConvEngineParams):
        need = np.minimum(np.arange(P) + W + 1, P - 1) if e.k == 3 else np.arange(P)
        S = e.pixel_cycles
        out = np.empty(P, np.int64)
        issue = -(1 << 40)
        for j in range(P):
            issue = max(int(a[need[j]]) + 1, issue + S)
            out[j] = issue + S + 2
        return out

    a = conv(a, engines[0])
    for b in range(p.blocks):
        a = conv(conv(a, engines[1 + 2 * b]), engines[2 + 2 * b]) + 2  # the gate: 2 cycles
    return conv(conv(a, engines[-2]), engines[-1])


def frame_cycles(p: PipelineParams) -> int:
    """Cycles from the first input beat to the last output beat (closed form; every 3×3 layer
    has the same ``S``, which :class:`PipelineParams` guarantees: one ``taps`` for all)."""
    S, W, B, P = p.conv_engines()[0].pixel_cycles, p.width, p.blocks, p.pixels
    return W + 9 + S * P + (2 * B + 1) * (S * (W + 2) + 3) + 2 * B


def action_counts(p: PipelineParams) -> dict[str, int]:
    from hwsim.golden.swiftchannel.conv import action_counts as conv_actions

    out: dict[str, int] = {"cycles": frame_cycles(p), "skip_fifo_bits": 0}
    for e in p.conv_engines():
        for k, v in conv_actions(e).items():
            if k != "cycles":
                out[k] = out.get(k, 0) + v
    feat = len(p.convs[0]["b"])
    out["gate_elements"] = p.blocks * p.pixels * feat
    out["skip_fifo_bits"] = 2 * p.blocks * p.pixels * feat * 8  # write + read
    return out


def storage_bits(p: PipelineParams) -> int:
    """Bits of the composed RTL's memories: every conv engine's and gate's, and each block's
    skip FIFO (``skip_depth`` pixels of the block's features)."""
    skip = sum(p.skip_depth * 8 * c.ic for c in p.conv_engines()[1::2][:p.blocks])
    return (sum(conv_spec.storage_bits(c) for c in p.conv_engines())
            + sum(gate_spec.storage_bits(g) for g in p.gate_params()) + skip)
