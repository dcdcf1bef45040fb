"""FPGA resources: a per-kernel resource model, calibrated against yosys, and the fit check.

Ternary MVU tile, for :class:`TernaryMvuParams` ``p``:

* LUT = ``tint_lut_fixed`` + ``tint_lut_per_lane_bit`` · lanes · act_width
  + ``tint_lut_per_acc_bit`` · acc_width + LUT-RAM LUTs;
* FF  = ``tint_ff_fixed`` + ``tint_ff_per_lane_bit`` · lanes · act_width
  + ``tint_ff_per_acc_bit`` · acc_width;
* no DSP (the requantization multiplier is shift-add);
* memories (weights ``weight_depth × 2·lanes``, activations ``cols/lanes × 8·lanes``): a memory of
  at most ``lutram_max_bits`` goes to LUT RAM (``ceil(depth/64)`` LUTs per bit, RAM64M-style),
  a larger one to block RAM by :func:`bram18_count` — the RAMB18E2 aspect ratios of UG573,
  no fitted coefficient.

The coefficients live in ``tables/fpga_usplus.yaml`` and are fitted by
:func:`fit_tint_coefficients` to ``fpga.yosys.synth_xilinx`` results on small configurations
(``hwsim bench estimate --calibration`` reproduces them; the tests validate them on others).

The Booth and nonlinear cores are priced per lane, ``<core>_<res>_fixed + <core>_<res>_per_lane
· lanes`` for LUT, FF and DSP (:func:`lane_resources`), fitted by :func:`fit_lane_coefficients`
to yosys on their RTL at several lane counts:

* ``booth``: the int8 dot-product engine of the attention head's QKᵀ / A·V (and the LO top-K
  selector's core) — ``lanes`` radix-4 Booth multipliers (:func:`rtl.common.booth.multiply`,
  style ``"booth"``: LUTs and carry chains, no DSP), their adder tree and a 32-bit accumulator,
  registered operands (the calibration harness of ``hwsim bench estimate``);
* ``nonlinear``: the integer RMSNorm unit (:class:`rtl.vitallm.rmsnorm_int.RmsNorm`, ``n`` =
  :data:`NONLINEAR_N`, DSP multipliers) with ``lanes`` lanes — squares, the isqrt / reciprocal
  and the per-lane output multipliers. The softmax's exponent lanes (inside the attention
  head's RTL) are assumed to cost what a norm lane costs; they are not synthesized apart.

The int8 MVU (:class:`rtl.common.int8_mvu.Int8MVU`, for :class:`Int8MvuParams` ``p``) is
priced per instance (:func:`int8_mvu_resources`): LUT and FF = ``int8mvu_<res>_fixed`` +
``int8mvu_<res>_per_lane`` · lanes + ``int8mvu_<res>_per_requant_bit`` · (acc_width +
mult_bits), fitted by :func:`fit_int8_mvu_coefficients`; DSP48E2 = ``lanes`` (one per 8 × 8
product) + the requantization multiplier's tiles (:func:`dsp_tiles`, a rule, not fitted); its
weight, activation and bias memories by the memory rule above.

A design is the architecture's ``tiles`` MVU tiles (each with its slice of the weight buffer
and its activation memory), the Booth and nonlinear cores, and the activation and KV buffers in
block RAM (64-bit wide). It fits when every resource is within the part's capacity.
"""

from __future__ import annotations

import math

from hwsim.golden.common.int8_mvu import BIAS_BITS, Int8MvuParams
from hwsim.golden.vitallm.absmax_barrier import AbsmaxBarrierParams
from hwsim.golden.vitallm.ternary_mvu import TernaryMvuParams

from .arch import Arch
from .kernels import ternary_tile_params
from .tables import Tables

__all__ = ["LUTRAM_MAX_BITS", "barrier_resources", "bram18_count", "dsp_tiles",
           "fit_before_synthesis", "fit_int8_mvu_coefficients", "fit_lane_coefficients",
           "fpga_resources", "int8_mvu_resources", "kernel_resources", "lane_resources",
           "memory_bits_capacity", "memory_resources", "tint_tile_resources"]

#: RAMB18E2 simple-dual-port aspect ratios (depth, width): UG573, "UltraScale Architecture
#: Memory Resources", Table 1-3 / 1-4
_RAMB18_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))

#: a memory of at most this many bits maps to LUT RAM (yosys's memory_libmap keeps small
#: memories out of block RAM; 2 Kb memories went to LUT RAM and 8 Kb ones to RAMB18 in the
#: calibration runs — the boundary between is not measured)
LUTRAM_MAX_BITS = 4096

#: see :func:`_lutram_fails` (8 configurations: depths ≤ 512 never failed, 2048 and 4096 did)
NOLUTRAM_DEPTH = 2048


def bram18_count(depth: int, width: int) -> int:
    """RAMB18E2 primitives for a ``depth × width`` memory: the cheapest aspect ratio."""
    return min(math.ceil(width / w) * math.ceil(depth / d) for d, w in _RAMB18_SHAPES)


def _lutram_fails(depth: int, width: int) -> bool:
    """Observed, not explained: in the calibration runs yosys's LUT-RAM mapping failed
    ("invalid OPTION_ABITS/WIDTH combination") exactly in the designs with a memory at least
    :data:`NOLUTRAM_DEPTH` deep; :func:`fpga.yosys.synth_xilinx` then re-runs with
    ``-nolutram`` and every memory of the design goes to block RAM."""
    return depth >= NOLUTRAM_DEPTH


def memory_resources(depth: int, width: int, nolutram: bool = False) -> dict[str, float]:
    """LUTs (LUT RAM) or 36 Kb block RAMs for one memory."""
    if depth * width <= LUTRAM_MAX_BITS and not nolutram:
        return {"luts": math.ceil(depth / 64) * width, "bram36": 0.0}
    return {"luts": 0, "bram36": bram18_count(depth, width) / 2}


def _tile_logic(p: TernaryMvuParams, tables: Tables) -> tuple[float, float]:
    r = tables.raw
    lane_bits = p.lanes * p.act.width
    luts = (r("resource.tint_lut_fixed") + r("resource.tint_lut_per_lane_bit") * lane_bits
            + r("resource.tint_lut_per_acc_bit") * p.acc_width)
    ffs = (r("resource.tint_ff_fixed") + r("resource.tint_ff_per_lane_bit") * lane_bits
           + r("resource.tint_ff_per_acc_bit") * p.acc_width)
    return luts, ffs


def tint_tile_resources(p: TernaryMvuParams, tables: Tables) -> dict[str, float]:
    """Resources of the RTL ``TernaryMVU`` for ``p``, memories included (calibration face)."""
    luts, ffs = _tile_logic(p, tables)
    w, x = _tile_memories(p)
    return {"luts": round(luts + w["luts"] + x["luts"]), "ffs": round(ffs), "dsps": 0,
            "bram36": w["bram36"] + x["bram36"]}


def _tile_memories(p: TernaryMvuParams, weight_depth: int | None = None):
    shapes = [(weight_depth or p.weight_depth, 2 * p.lanes), (p.chunks, p.act.width * p.lanes)]
    nolutram = any(_lutram_fails(d, w) for d, w in shapes)
    return [memory_resources(d, w, nolutram) for d, w in shapes]


def barrier_dsps(p: AbsmaxBarrierParams) -> int:
    """DSP48E2 slices of the barrier's ``a × r`` multipliers (``mul_style="dsp"``), one per
    lane: the signed 27 × 18 multiplier takes the signed accumulator whole up to 27 bits (then
    26-bit tiles) and the unsigned ``r`` of ``r_bits`` ≤ 17 bits whole, so ``lanes ·
    ceil((in_width−1)/26) · ceil(r_bits/17)`` (yosys: 1 at in_width 16 and 24, 2 at 32 and 40);
    ×127 is a shift and a subtract in LUTs."""
    if p.mul_style != "dsp":
        return 0
    return p.lanes * math.ceil((p.in_width - 1) / 26) * math.ceil(p.r_bits / 17)


def _barrier_features(p: AbsmaxBarrierParams) -> list[float]:
    # fixed, per accumulator bit, and the bits of the adders that join the DSP tiles' products
    return [1.0, p.in_width, (p.in_width + p.r_bits) * max(barrier_dsps(p) - 1, 0)]


def barrier_resources(p: AbsmaxBarrierParams, tables: Tables) -> dict[str, float]:
    """Resources of the RTL ``AbsmaxBarrier`` for ``p`` (calibration face)."""
    r = tables.raw
    f = _barrier_features(p)
    luts = (r("resource.barrier_lut_fixed") * f[0] + r("resource.barrier_lut_per_bit") * f[1]
            + r("resource.barrier_lut_per_join_bit") * f[2])
    ffs = r("resource.barrier_ff_fixed") + r("resource.barrier_ff_per_bit") * p.in_width
    buf = memory_resources(p.length, p.in_width, nolutram=_lutram_fails(p.length, p.in_width))
    return {"luts": round(luts + buf["luts"]), "ffs": round(ffs), "dsps": barrier_dsps(p),
            "bram36": buf["bram36"]}


def lane_resources(core: str, lanes: int, tables: Tables) -> dict[str, float]:
    """LUT / FF / DSP of the ``core`` (``"booth"`` or ``"nonlinear"``) with ``lanes`` lanes."""
    r = tables.raw
    return {res: r(f"resource.{core}_{res}_fixed") + r(f"resource.{core}_{res}_per_lane") * lanes
            for res in ("lut", "ff", "dsp")}


def fpga_resources(arch: Arch, tables: Tables, max_cols: int) -> dict:
    """LUT/FF/DSP/BRAM of the accelerator on ``arch`` and whether it fits the part."""
    tiles, lanes = arch["tint.tiles"], arch["tint.lanes"]
    p = ternary_tile_params(1, max_cols, lanes)
    t_luts, t_ffs = _tile_logic(p, tables)
    w_bits = arch["sram.weights"] / tiles
    w_mem, x_mem = _tile_memories(p, math.ceil(w_bits / (2 * lanes)))
    luts = tiles * (t_luts + w_mem["luts"] + x_mem["luts"])
    bram = tiles * (w_mem["bram36"] + x_mem["bram36"])
    ffs = tiles * t_ffs
    booth = lane_resources("booth", arch["booth.lanes"], tables)
    nonlinear = lane_resources("nonlinear", arch["nonlinear.lanes"], tables)
    luts += booth["lut"] + nonlinear["lut"]
    ffs += booth["ff"] + nonlinear["ff"]
    dsps = booth["dsp"] + nonlinear["dsp"]
    # one absmax barrier between the cores, at the accumulator width; its token buffer is
    # counted with the activation buffer below
    bar = barrier_resources(AbsmaxBarrierParams(length=1, in_width=p.acc_width), tables)
    luts += bar["luts"] - memory_resources(1, p.acc_width)["luts"]
    ffs += bar["ffs"]
    dsps += bar["dsps"]
    for key in ("sram.activations", "sram.kv"):
        bram += bram18_count(math.ceil(arch[key] / 64), 64) / 2
    out = {"luts": round(luts), "ffs": round(ffs), "dsps": round(dsps), "brams": bram,
           "urams": 0}
    cap = {"luts": arch["capacity.luts"], "ffs": arch["capacity.ffs"],
           "dsps": arch["capacity.dsps"], "brams": arch["capacity.bram36"]}
    util = {k: out[k] / cap[k] for k in cap}
    out["utilization"] = util
    out["capacity"] = cap
    out["fits"] = all(u <= 1.0 for u in util.values())
    out["limiting"] = max(util, key=util.get)
    return out


#: (lanes, rows, cols) of the configurations the coefficients are fitted to, and of the ones
#: that validate them (never used in the fit)
CALIBRATION_CONFIGS = ((4, 32, 32), (8, 64, 64), (16, 64, 64), (32, 64, 128), (4, 64, 128))
VALIDATION_CONFIGS = ((8, 32, 32), (16, 32, 256), (8, 128, 64))


#: absmax barrier (length, in_width) configurations, mul_style "dsp": fitted / held out
BARRIER_CALIBRATION_CONFIGS = ((16, 24), (32, 16), (128, 32), (64, 40))
BARRIER_VALIDATION_CONFIGS = ((64, 24), (256, 20))


#: lanes of the Booth dot-product engine and of the RMSNorm unit: fitted / held out
BOOTH_CALIBRATION_CONFIGS = (2, 4, 8, 16)
BOOTH_VALIDATION_CONFIGS = (12,)
NONLINEAR_CALIBRATION_CONFIGS = (1, 2, 4, 8)
NONLINEAR_VALIDATION_CONFIGS = (16,)
#: vector length of the RMSNorm units the nonlinear core is fitted to
NONLINEAR_N = 64


def fit_lane_coefficients(core: str, points: list[tuple[int, dict]]) -> dict[str, float]:
    """Least-squares ``resource.<core>_{lut,ff,dsp}_{fixed,per_lane}`` from ``(lanes, yosys
    resources)`` points. Both coefficients are kept non-negative: a negative fixed part (a
    design that is exactly per-lane plus noise) is refitted through the origin."""
    import numpy as np

    lanes = np.array([n for n, _ in points], dtype=float)
    a = np.stack([np.ones_like(lanes), lanes], axis=1)
    out = {}
    for res, key in (("lut", "luts"), ("ff", "ffs"), ("dsp", "dsp48e2")):
        y = np.array([r[key] for _, r in points], dtype=float)
        fixed, per_lane = np.linalg.lstsq(a, y, rcond=None)[0]
        if fixed < 0:
            fixed, per_lane = 0.0, float(lanes @ y / (lanes @ lanes))
        out[f"{core}_{res}_fixed"] = round(max(float(fixed), 0.0), 3)
        out[f"{core}_{res}_per_lane"] = round(max(float(per_lane), 0.0), 3)
    return out


def fit_barrier_coefficients(points: list[tuple[AbsmaxBarrierParams, dict]]) -> dict[str, float]:
    """Least-squares barrier LUT/FF coefficients from ``(params, yosys resources)`` points."""
    import numpy as np

    a, luts, ffs = [], [], []
    for p, res in points:
        buf = memory_resources(p.length, p.in_width, nolutram=_lutram_fails(p.length, p.in_width))
        a.append(_barrier_features(p))
        luts.append(res["luts"] - buf["luts"])
        ffs.append(res["ffs"])
    a = np.array(a)
    cl = np.linalg.lstsq(a, np.array(luts, dtype=float), rcond=None)[0]
    if cl[2] < 0:   # the tiles' join adders cannot cost negative LUTs: refit without them
        cl = [*np.linalg.lstsq(a[:, :2], np.array(luts, dtype=float), rcond=None)[0], 0.0]
    cf = np.linalg.lstsq(a[:, :2], np.array(ffs, dtype=float), rcond=None)[0]
    return {"barrier_lut_fixed": float(cl[0]), "barrier_lut_per_bit": float(cl[1]),
            "barrier_lut_per_join_bit": float(cl[2]), "barrier_ff_fixed": float(cf[0]),
            "barrier_ff_per_bit": float(cf[1])}


def fit_tint_coefficients(points: list[tuple[TernaryMvuParams, dict]]) -> dict[str, float]:
    """Least-squares LUT and FF coefficients from ``(params, yosys resources)`` points.

    LUT-RAM LUTs of each point (from the memory rule) are subtracted first, so the fit sees
    only logic. Returns the ``resource.tint_*`` table entries.
    """
    import numpy as np

    rows, luts, ffs = [], [], []
    for p, res in points:
        mem = sum(m["luts"] for m in _tile_memories(p))
        rows.append([1.0, p.lanes * p.act.width, p.acc_width])
        luts.append(res["luts"] - mem)
        ffs.append(res["ffs"])
    a = np.array(rows)
    cl = np.linalg.lstsq(a, np.array(luts, dtype=float), rcond=None)[0]
    # FFs: the accumulator width varies too little across small configurations to separate
    # it from the fixed part (a free fit makes it negative), so it is folded into the fixed part
    cf = np.linalg.lstsq(a[:, :2], np.array(ffs, dtype=float), rcond=None)[0]
    return {"tint_lut_fixed": float(cl[0]), "tint_lut_per_lane_bit": float(cl[1]),
            "tint_lut_per_acc_bit": float(cl[2]), "tint_ff_fixed": float(cf[0]),
            "tint_ff_per_lane_bit": float(cf[1]), "tint_ff_per_acc_bit": 0.0}


# ---- int8 MVU ------------------------------------------------------------------------------
#: int8-mvu configurations (lanes, rows, cols, mult_bits, bias) the coefficients are fitted to,
#: and the held-out ones that validate them
INT8_MVU_CALIBRATION_CONFIGS = ((2, 8, 16, 24, False), (4, 8, 16, 24, False),
                                (8, 8, 16, 24, False), (4, 8, 16, 16, False),
                                (4, 8, 16, 24, True))
INT8_MVU_VALIDATION_CONFIGS = ((6, 8, 24, 24, False), (4, 32, 32, 24, False))


def int8_mvu_params(cfg: tuple) -> Int8MvuParams:
    """The :class:`Int8MvuParams` of a calibration configuration tuple."""
    lanes, rows, cols, mult_bits, bias = cfg
    return Int8MvuParams(lanes=lanes, rows=rows, cols=cols, mult_bits=mult_bits, bias=bias)


def dsp_tiles(a_bits: int, b_bits: int) -> int:
    """DSP48E2 slices of a signed ``a_bits × b_bits`` product as yosys's ``mul2dsp`` tiles it:
    the wider operand on the 27-bit port, the narrower on the 18-bit one, an operand wider than
    its port split into 26- / 17-bit unsigned pieces. Matches yosys at (20, 17), (25, 20) and
    (33, 25) bits (the int8 MVU's requantization multiplier)."""
    big, small = max(a_bits, b_bits), min(a_bits, b_bits)
    na = 1 if big <= 27 else math.ceil(big / 26)
    nb = 1 if small <= 18 else math.ceil(small / 17)
    return na * nb


def _int8_mvu_memories(p: Int8MvuParams) -> list[dict]:
    shapes = [(p.weight_depth, 8 * p.lanes), (p.chunks, 8 * p.lanes)]
    if p.bias:
        shapes.append((p.rows, BIAS_BITS))
    if p.per_row_scale:
        shapes.append((p.rows, p.scale_bits))
    nolutram = any(_lutram_fails(d, w) for d, w in shapes)
    return [memory_resources(d, w, nolutram) for d, w in shapes]


def _int8_mvu_features(p: Int8MvuParams) -> list[float]:
    return [1.0, p.lanes, p.acc_width + p.mult_bits]


def int8_mvu_resources(p: Int8MvuParams, tables: Tables) -> dict[str, float]:
    """Resources of the RTL ``Int8MVU`` for ``p``, memories included."""
    r = tables.raw
    f = _int8_mvu_features(p)
    logic = {res: sum(r(f"resource.int8mvu_{res}_{k}") * x
                      for k, x in zip(("fixed", "per_lane", "per_requant_bit"), f, strict=True))
             for res in ("lut", "ff")}
    mem = _int8_mvu_memories(p)
    # signed acc_width × (mult_bits + 1) requantization product (M is unsigned)
    dsps = p.lanes + dsp_tiles(p.acc_width, p.mult_bits + 1)
    return {"luts": round(logic["lut"] + sum(m["luts"] for m in mem)), "ffs": round(logic["ff"]),
            "dsps": dsps, "bram36": sum(m["bram36"] for m in mem)}


def fit_int8_mvu_coefficients(points: list[tuple[Int8MvuParams, dict]]) -> dict[str, float]:
    """Least-squares ``resource.int8mvu_{lut,ff}_*`` from ``(params, yosys resources)`` points;
    LUT-RAM LUTs (the memory rule) are subtracted first, so the fit sees only logic. A negative
    fixed part is refitted through the origin (the table's coefficients are non-negative)."""
    import numpy as np

    a = np.array([_int8_mvu_features(p) for p, _ in points])
    out = {}
    for res, key in (("lut", "luts"), ("ff", "ffs")):
        y = np.array([got[key] - (sum(m["luts"] for m in _int8_mvu_memories(p))
                                  if res == "lut" else 0) for p, got in points], dtype=float)
        coef = np.linalg.lstsq(a, y, rcond=None)[0]
        if coef[0] < 0:
            coef = np.concatenate([[0.0], np.linalg.lstsq(a[:, 1:], y, rcond=None)[0]])
        for name, c in zip(("fixed", "per_lane", "per_requant_bit"), coef, strict=True):
            out[f"int8mvu_{res}_{name}"] = round(float(c), 3)
    return out


#: kernels with a calibrated UltraScale+ resource model (the FPGA flow's comparison hook)
_KERNEL_MODELS = {"ternary-mvu": tint_tile_resources, "absmax-barrier": barrier_resources,
                  "int8-mvu": int8_mvu_resources}


def kernel_resources(kernel_name: str, params, part_name: str) -> dict:
    """Predicted UltraScale+ resources of one RTL kernel (the FPGA bench's comparison column).

    Returns ``{"luts", "ffs", "dsp48e2", "bram36"}`` for a kernel with a calibrated model on an
    UltraScale+ part, else ``{"available": False, "reason": …}``. The prediction covers the
    kernel alone, not the FPGA flow's test harness around it.
    """
    from .tables import load_tables

    model = _KERNEL_MODELS.get(kernel_name)
    if model is None:
        return {"available": False, "reason": f"no resource model for {kernel_name}"}
    if getattr(params, "pipeline", "short") != "short":
        return {"available": False,
                "reason": f"resource model is for the short pipeline, not {params.pipeline}"}
    if not part_name.lower().startswith("xczu"):
        return {"available": False, "reason": f"resource model is for UltraScale+, not {part_name}"}
    r = model(params, load_tables("fpga_usplus"))
    return {"luts": r["luts"], "ffs": r["ffs"], "dsp48e2": r["dsps"], "bram36": r["bram36"]}


#: bits one LUT holds as distributed RAM: an ECP5 LUT4 is 16 × 1, an UltraScale+ LUT6 64 × 1
_LUTRAM_BITS = {"ecp5": 16, "xcup": 64}
#: bits of one block memory: ECP5 EBR 18 Kb (DP16KD), UltraScale+ RAMB36 36 Kb, URAM 288 Kb
_BLOCK_BITS = {"bram": 18 * 1024, "bram36": 36 * 1024, "uram": 288 * 1024}


def memory_bits_capacity(part) -> int:
    """The most memory bits ``part`` (an :class:`fpga.parts.Part`) can hold: every block RAM
    full and every LUT used as distributed RAM (an upper bound: no logic left)."""
    cap = part.capacity
    return (sum(n * _BLOCK_BITS[r] for r, n in cap.items() if r in _BLOCK_BITS)
            + cap["luts"] * _LUTRAM_BITS.get(part.family, 16))


def fit_before_synthesis(kernel, params, part, design: str) -> None:
    """Raise one :class:`HwsimError` line when ``kernel`` with ``params`` cannot fit ``part``,
    from closed-form figures, before anything is elaborated or synthesized.

    Two checks: the design's memory bits (``storage_bits`` of its golden module) against
    :func:`memory_bits_capacity`, on every part; and, for a kernel with a calibrated
    UltraScale+ model on an UltraScale+ part, its predicted LUT / FF / DSP48E2 / BRAM36
    (:func:`kernel_resources`) against the part's capacity.
    """
    from hwsim.errors import HwsimError
    from hwsim.limits import storage_bits

    hint = "; pass --no-fit-check to synthesize anyway"
    bits = storage_bits(kernel, params)
    cap = memory_bits_capacity(part)
    if bits is not None and bits > cap:
        raise HwsimError(f"{design} does not fit {part.name} (estimated before synthesis): "
                         f"needs memory {bits:,} bits > {cap:,} available{hint}")
    if part.family != "xcup" or kernel.name not in _KERNEL_MODELS:
        return
    r = kernel_resources(kernel.name, params, part.name)
    labels = {"luts": "LUT", "ffs": "FF", "dsp48e2": "DSP48E2", "bram36": "BRAM36"}
    over = [f"{labels[k]} {r[k]:,} > {part.capacity[k]:,}" for k in labels
            if r.get(k, 0) > part.capacity[k]]
    if over:
        raise HwsimError(f"{design} does not fit {part.name} (estimated before synthesis): "
                         f"needs {', '.join(over)} available{hint}")
