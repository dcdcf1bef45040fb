"""Price a compiled design: each node's kernel instance × the target's tables.

A compiled design (``hwsim compile``) is a list of nodes, each one instance of a registered
kernel (:data:`hwsim.kernels.KERNELS`) with its parameters, processing some number of vectors
per inference. :func:`estimate_design` prices it on an estimator target (:mod:`.arch`):

* **cycles**: the kernel's ``cycles`` hook (one unit from its first input beat to its last
  output beat, the golden formula); a node is busy ``cycles × vectors``;
* **actions**: the kernel's ``actions`` hook (the golden action counts of one unit) × vectors,
  mapped into the estimator's action vocabulary (:data:`hwsim.estimate.kernels.ACTIONS`) by the
  kernel's :class:`Pricing` entry in :data:`PRICING`; **energy** = Σ count × the target's energy
  per action (:func:`hwsim.estimate.engine.action_energy`), except that a weight read costs an
  access of the node's own weight memory (ASIC: the table's SRAM energy at that size) and an
  output bit a register write (it enters the FIFO to the next node);
* **area** (ASIC): the kernel's datapath inventory (:class:`Inventory`: adders, multipliers,
  register bits, memories) priced as :mod:`.area` prices the accelerator's cores;
* **resources** (FPGA): the kernel's resource model of :mod:`.fpga` (coefficients fitted to
  yosys on its RTL), memories by the LUT-RAM / RAMB18E2 rule.

Totals: the sums over nodes; ``cycles`` is the caller's end-to-end figure when given (the
dataflow top's schedule), else the sum of every node's ``cycles × vectors`` (nodes one after
the other: an upper bound for a pipelined top). The FIFOs and glue of the top are not priced.

Adding a kernel: one :class:`Pricing` entry in :data:`PRICING` (its golden actions' map, its
inventory and its FPGA resource function) and, for the FPGA, its coefficients in
``tables/fpga_usplus.yaml`` fitted by ``hwsim bench estimate --calibration``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

from hwsim.errors import HwsimError
from hwsim.golden.common.int8_mvu import BIAS_BITS, Int8MvuParams
from hwsim.kernels import get_kernel

from .arch import Arch, load_arch
from .area import Inventory, inventory_cells, mvu_inventory, ternary_inventory
from .engine import action_energy
from .fpga import int8_mvu_resources, memory_resources, tint_tile_resources
from .tables import Tables, load_tables

__all__ = ["PRICING", "Inventory", "Pricing", "estimate_design", "priced_kernels"]


@dataclass(frozen=True)
class Pricing:
    """How the estimator prices one kernel's instances.

    ``actions``: golden action → ``{vocabulary action: multiplicity}`` (an empty mapping: free);
    ``inventory(params)``: its :class:`Inventory`; ``fpga(params, tables)``: ``{"luts", "ffs",
    "dsps", "bram36"}`` on UltraScale+; ``weight_memory``: the inventory memory that
    ``weight_read_bits`` reads.
    """

    actions: Mapping[str, Mapping[str, int]]
    inventory: Callable[[object], Inventory]
    fpga: Callable[[object, Tables], dict]
    weight_memory: str = "weights"


# ---- int8-mvu (rtl/common/int8_mvu.py) -------------------------------------------------------
def _int8_mvu_inventory(p: Int8MvuParams) -> Inventory:
    """``rtl/common/int8_mvu.py``: per lane an 8 × 8 product, the skeleton's tree of 16-bit
    products, accumulator and ``acc × (M + 1 bit)`` product."""
    return mvu_inventory(
        p, lane_width=16, lane_multipliers=((8, 8),), multiplier=(p.acc_width, p.mult_bits + 1),
        row_scale=p.per_row_scale,
        memories=(("weights", p.weight_depth, 8 * p.lanes),)
        + ((("bias", p.rows, BIAS_BITS),) if p.bias else ())
        + ((("scales", p.rows, p.scale_bits),) if p.per_row_scale else ()))


INT8_MVU = Pricing(
    actions={
        "mac": {"int8_mul": 1, "add16": 1},         # the 8 × 8 product and its adder-tree add
        "acc_add": {"acc_add": 1}, "bias_add": {"add32": 1},
        "weight_read_bits": {"weight_read_bits": 1}, "act_read_bits": {"act_read_bits": 1},
        "act_write_bits": {"act_write_bits": 1}, "requant_mul": {"requant_mul": 1},
        "out_bits": {"out_bits": 1},
    },
    inventory=_int8_mvu_inventory,
    fpga=int8_mvu_resources,
)


# ---- ternary-mvu (rtl/vitallm/ternary_mvu.py): the tile of area.py -------------------------
TERNARY_MVU = Pricing(
    actions={a: {a: 1} for a in ("ternary_add", "ternary_skip", "acc_add", "weight_read_bits",
                                 "act_read_bits", "act_write_bits", "requant_mul", "out_bits")},
    inventory=ternary_inventory,
    fpga=tint_tile_resources,
)

# ---- lut-act (rtl/common/lut_act.py): one 256 × 8 ROM per lane, read synchronously ----------
def _lut_inventory(p) -> Inventory:
    # the output codes are the ROMs' read registers (memory); the valid bit is the one flip-flop
    return Inventory(adders=(), multipliers=(), register_bits=1,
                     memories=tuple(("table", 256, 8) for _ in range(p.lanes)))


def _lut_fpga(p, tables: Tables) -> dict:
    """Assumption, not fitted: each lane's table as LUT RAM (256 × 8 bits), plus the output
    register and its valid bit (9 FFs per lane)."""
    mem = memory_resources(256, 8)
    return {"luts": mem["luts"] * p.lanes, "ffs": 9 * p.lanes, "dsps": 0,
            "bram36": mem["bram36"] * p.lanes}


LUT_ACT = Pricing(
    actions={"lut_read": {}, "lut_read_bits": {"act_read_bits": 1}, "out_bits": {"out_bits": 1}},
    inventory=_lut_inventory,
    fpga=_lut_fpga,
    weight_memory="table",
)

# ---- eltwise (rtl/common/eltwise.py): a 3-stage add/mul pipeline per lane ---------------------
def _eltwise_inventory(p) -> Inventory:
    mults = ((9, 24), (9, 24)) if p.op == "add" else ((9, 9), (18, 24))
    return Inventory(adders=(9, 9, 34, 34) * p.lanes, multipliers=mults * p.lanes,
                     register_bits=(16 + 2 * 34 + 9) * p.lanes, memories=())


def _eltwise_fpga(p, tables: Tables) -> dict:
    """Assumption, not fitted: per lane two DSP48E2 multiplies (operand × 24-bit multiplier),
    ~120 LUTs of subtract/round/saturate logic and the pipeline registers."""
    return {"luts": 120 * p.lanes, "ffs": (16 + 2 * 34 + 9) * p.lanes, "dsps": 2 * p.lanes,
            "bram36": 0.0}


ELTWISE = Pricing(
    actions={"add8": {"add8": 1}, "requant_mul": {"requant_mul": 1},
             "int8_mul": {"int8_mul": 1}, "add32": {"add32": 1},
             "register_read_bits": {"register_read_bits": 1}, "out_bits": {"out_bits": 1}},
    inventory=_eltwise_inventory,
    fpga=_eltwise_fpga,
    weight_memory="",
)

# ---- layernorm (rtl/common/layernorm.py): sums, root, reciprocal, per-lane scaling ----------
def _layernorm_inventory(p) -> Inventory:
    cw = p.s1_width + 1
    lane_adders = (p.s1_width, p.s2_width, cw, p.t_width, p.t_width)  # sums, centre, B, round
    return Inventory(
        adders=lane_adders * p.lanes + (2 * p.s1_width + 2, p.v_width, p.q_width + 1),
        multipliers=((8, 8), (cw, p.gamma_bits), (cw + p.gamma_bits, p.recip_bits + 1))
        * p.lanes + ((p.s1_width, p.s1_width),),
        register_bits=(p.s1_width + p.s2_width + 3 * p.v_width + 2 * (p.q_width + p.recip_bits)
                       + 8 * p.lanes + 16),
        memories=(("buffer", p.chunks, 8 * p.lanes),
                  ("gamma_beta", p.chunks, (p.gamma_bits + p.beta_bits) * p.lanes)),
    )


def _layernorm_fpga(p, tables: Tables) -> dict:
    """Assumption, not fitted: per lane four DSP48E2 (the square, ``c·Γ`` and the wide ``·r``
    as two) and ~250 LUTs of centring/offset/round/saturate logic; four DSPs for ``S1²``;
    ~6 LUTs per bit of the square-root and reciprocal datapaths; the vector buffer and the
    Γ/B ROM by the memory rule; flip-flops as the inventory's registers."""
    inv = _layernorm_inventory(p)
    mems = [memory_resources(d, w) for _, d, w in inv.memories]
    return {"luts": 250 * p.lanes + 6 * (p.v_width + p.q_width + p.recip_bits)
            + sum(m["luts"] for m in mems),
            "ffs": inv.register_bits, "dsps": 4 * p.lanes + 4,
            "bram36": sum(m["bram36"] for m in mems)}


LAYERNORM = Pricing(
    actions={"square_mac": {"int8_mul": 1, "add32": 1}, "isqrt": {"add32": 32},
             "reciprocal": {"add32": 32}, "center": {"add32": 1}, "scale_mul": {"mul32": 1},
             "add32": {"add32": 1}, "x_read_bits": {"register_read_bits": 1},
             "gamma_read_bits": {"weight_read_bits": 1}, "out_bits": {"out_bits": 1}},
    inventory=_layernorm_inventory,
    fpga=_layernorm_fpga,
    weight_memory="gamma_beta",
)

# ---- conv-window (rtl/common/conv_window.py): line buffers, counters, an output register -----
def _window_inventory(p) -> Inventory:
    """Assumption, not fitted: the line-buffer memory, ~10 counters/comparators of 16 bits
    for the input and window positions, and the two pipeline registers of a beat."""
    return Inventory(adders=(16,) * 10, multipliers=(),
                     register_bits=2 * (8 * p.lanes + 1) + 10 * 16,
                     memories=(("line_buffer", p.depth, 8 * p.lanes),))


def _window_fpga(p, tables: Tables) -> dict:
    """Assumption, not fitted: the line buffer by the LUT-RAM / RAMB18E2 rule, ~200 LUTs of
    counters, address arithmetic and comparators, and the registers of the inventory."""
    mem = memory_resources(p.depth, 8 * p.lanes)
    return {"luts": 200 + mem["luts"], "ffs": 2 * (8 * p.lanes + 1) + 10 * 16, "dsps": 0,
            "bram36": mem["bram36"]}


#: a line-buffer write and a read are each priced as an access of the line-buffer memory
#: (``weight_read_bits`` at its SRAM size: an assumption, writes as reads)
CONV_WINDOW = Pricing(
    actions={"buffer_write_bits": {"weight_read_bits": 1},
             "buffer_read_bits": {"weight_read_bits": 1}, "out_bits": {"out_bits": 1}},
    inventory=_window_inventory,
    fpga=_window_fpga,
    weight_memory="line_buffer",
)

#: registry kernel name → its pricing
PRICING: dict[str, Pricing] = {"int8-mvu": INT8_MVU, "ternary-mvu": TERNARY_MVU,
                               "lut-act": LUT_ACT, "eltwise": ELTWISE, "layernorm": LAYERNORM,
                               "conv-window": CONV_WINDOW}


def priced_kernels() -> list[str]:
    return sorted(PRICING)


# ---- pricing ---------------------------------------------------------------------------------
def _pricing(name: str) -> Pricing:
    get_kernel(name)  # an unknown kernel: the registry's one line
    try:
        return PRICING[name]
    except KeyError:
        raise HwsimError(f"kernel {name!r} has no estimator pricing (add a Pricing entry to "
                         f"hwsim/estimate/design.py PRICING); priced: "
                         f"{', '.join(priced_kernels())}") from None


def _summary(params) -> dict:
    return {f.name: getattr(params, f.name) for f in fields(params)}


def _vocabulary(kernel: str, pricing: Pricing, golden: dict, vectors: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for action, n in golden.items():
        if action == "cycles":
            continue
        if action not in pricing.actions:
            raise HwsimError(f"kernel {kernel!r}: golden action {action!r} has no price "
                             "(hwsim/estimate/design.py PRICING)")
        for a, k in pricing.actions[action].items():
            out[a] = out.get(a, 0) + k * n * vectors
    return out


def _asic_area(inv: Inventory, arch: Arch, tables: Tables) -> dict[str, float]:
    """Logic and SRAM area (m²) of one instance, by the rules of :mod:`.area`."""
    f = tables.area_factor(arch["technology.node"])
    cells = inventory_cells(tables, inv) * f
    bits = sum(d * w for _, d, w in inv.memories)
    sram = bits * tables.raw("area.sram_bitcell") * f / arch["area.sram_array_efficiency"]
    logic = cells / arch["area.placement_utilization"]
    return {"logic": logic, "sram": sram, "total": logic + sram}


def _node_energy(kernel: str, pricing: Pricing, params, actions: dict, arch: Arch,
                 tables: Tables, base: dict[str, float]) -> float:
    energy = dict(base)
    energy["out_bits"] = base["register_read_bits"]  # into the FIFO to the next node
    if arch.kind == "asic":
        mems = {n: d * w for n, d, w in pricing.inventory(params).memories}
        if pricing.weight_memory in mems:
            energy["weight_read_bits"] = tables.sram_energy_bit(
                mems[pricing.weight_memory], arch["technology.node"], arch["technology.voltage"])
    missing = sorted(set(actions) - set(energy))
    if missing:
        raise HwsimError(f"kernel {kernel!r}: action {missing[0]!r} has no energy on "
                         f"{arch.name}")
    return sum(n * energy[a] for a, n in actions.items())


def _check_nodes(nodes) -> None:
    seen = set()
    for i, node in enumerate(nodes):
        if not isinstance(node, (tuple, list)) or len(node) not in (4, 5):
            raise HwsimError(f"design node {i}: expected (name, kernel, params, vectors"
                             f"[, actions]), not {node!r}")
        name, kernel, params, vectors = node[:4]
        if name in seen:
            raise HwsimError(f"design node name {name!r} appears twice")
        seen.add(name)
        cls = get_kernel(kernel).params_cls
        if isinstance(cls, type) and not isinstance(params, cls):
            raise HwsimError(f"design node {name!r}: kernel {kernel} needs {cls.__name__}, "
                             f"not {type(params).__name__}")
        if isinstance(vectors, bool) or not isinstance(vectors, int) or vectors < 1:
            raise HwsimError(f"design node {name!r}: vectors must be an integer ≥ 1, "
                             f"not {vectors!r}")


def estimate_design(nodes, target: str, cycles: int | None = None,
                    clock_mhz: float | None = None) -> dict:
    """Price a design of kernel instances on an estimator target.

    Parameters
    ----------
    nodes : list of (name, kernel_name, params, vectors[, actions])
        One instance of registry kernel ``kernel_name`` per node, with its params dataclass
        instance, processing ``vectors`` units (vectors, tokens…) per inference; ``actions``
        (optional): the golden action counts per inference where they are not the kernel's
        ``actions(params)`` × ``vectors`` (a causal attention's queries see fewer keys).
    target : str
        An estimator target (``hwsim.estimate.known_targets()``: ``vitallm`` ASIC, ``xczu28dr``…
        FPGA) or an architecture YAML path.
    cycles : int, optional
        The design's end-to-end cycles per inference (the dataflow top's figure); default: the
        sum over nodes of ``cycles × vectors`` (nodes one after the other).
    clock_mhz : float, optional
        Clock; default the target's.

    Returns
    -------
    dict
        ``target``, ``kind``, ``clock_mhz``, ``cycles``, ``cycles_source`` (``"caller"`` or
        ``"sum of node cycles × vectors"``), ``latency_us``, ``energy_uj`` (per inference,
        dynamic + static), ``dynamic_energy_uj``, ``static_energy_uj``, ``power_mw``;
        ASIC: ``area_mm2``, ``logic_mm2``, ``sram_mm2``; FPGA: ``luts``, ``ffs``, ``dsps``,
        ``brams`` (36 Kb), ``fits``, ``utilization``, ``capacity``, ``limiting``; and
        ``nodes``: per node ``name``, ``kernel``, ``params``, ``vectors``, ``cycles`` (one
        unit), ``busy_cycles``, ``actions``, ``energy_uj`` and ``area_mm2`` or the resources.

    Raises
    ------
    HwsimError
        One line: an unknown target or kernel, a kernel without pricing, a malformed node.
    """
    arch = load_arch(target)
    tables = load_tables(arch.tables)
    if tables.kind != arch.kind:
        raise HwsimError(f"{arch.name}: table {tables.name} is for {tables.kind}, "
                         f"the target is {arch.kind}")
    if not nodes:
        raise HwsimError("a design needs at least one node")
    _check_nodes(nodes)
    if cycles is not None and (isinstance(cycles, bool) or not isinstance(cycles, int)
                               or cycles < 1):
        raise HwsimError(f"cycles must be an integer ≥ 1, not {cycles!r}")
    if clock_mhz is not None and not (isinstance(clock_mhz, (int, float)) and clock_mhz > 0):
        raise HwsimError(f"clock_mhz must be > 0, not {clock_mhz!r}")
    clock_hz = clock_mhz * 1e6 if clock_mhz is not None else arch["clock"]
    base = action_energy(arch, tables)
    rows, dynamic_j = [], 0.0
    totals = {"luts": 0.0, "ffs": 0.0, "dsps": 0.0, "brams": 0.0, "logic": 0.0, "sram": 0.0}
    for name, kernel_name, params, vectors, *given in nodes:
        kernel, pricing = get_kernel(kernel_name), _pricing(kernel_name)
        unit = int(kernel.cycles(params))
        actions = _vocabulary(kernel_name, pricing, given[0], 1) if given and given[0] \
            else _vocabulary(kernel_name, pricing, kernel.actions(params), vectors)
        e = _node_energy(kernel_name, pricing, params, actions, arch, tables, base)
        dynamic_j += e
        row = {"name": name, "kernel": kernel_name, "params": _summary(params),
               "vectors": vectors, "cycles": unit, "busy_cycles": unit * vectors,
               "actions": actions, "energy_uj": 1e6 * e}
        if arch.kind == "asic":
            a = _asic_area(pricing.inventory(params), arch, tables)
            totals["logic"] += a["logic"]
            totals["sram"] += a["sram"]
            row["area_mm2"] = a["total"] * 1e6
        else:
            r = pricing.fpga(params, tables)
            row.update({"luts": r["luts"], "ffs": r["ffs"], "dsps": r["dsps"],
                        "brams": r["bram36"]})
            for k in ("luts", "ffs", "dsps", "brams"):
                totals[k] += row[k]
        rows.append(row)
    total_cycles = cycles if cycles is not None else sum(r["busy_cycles"] for r in rows)
    seconds = total_cycles / clock_hz
    if arch.kind == "asic":
        static_j = dynamic_j * arch["power.leakage_fraction"]
    else:
        static_j = arch["power.static"] * seconds
    out = {
        "target": arch.name, "kind": arch.kind, "tables": tables.name,
        "clock_mhz": clock_hz / 1e6, "cycles": total_cycles,
        "cycles_source": "caller" if cycles is not None else "sum of node cycles × vectors",
        "latency_us": 1e6 * seconds,
        "energy_uj": 1e6 * (dynamic_j + static_j), "dynamic_energy_uj": 1e6 * dynamic_j,
        "static_energy_uj": 1e6 * static_j,
        "power_mw": 1e3 * (dynamic_j + static_j) / seconds,
    }
    if arch.kind == "asic":
        out.update({"area_mm2": 1e6 * (totals["logic"] + totals["sram"]),
                    "logic_mm2": 1e6 * totals["logic"], "sram_mm2": 1e6 * totals["sram"]})
    else:
        used = {"luts": round(totals["luts"]), "ffs": round(totals["ffs"]),
                "dsps": round(totals["dsps"]), "brams": totals["brams"]}
        cap = {"luts": arch["capacity.luts"], "ffs": arch["capacity.ffs"],
               "dsps": arch["capacity.dsps"], "brams": arch["capacity.bram36"]}
        util = {k: used[k] / cap[k] for k in cap}
        out.update(used)
        out.update({"fits": all(u <= 1.0 for u in util.values()), "utilization": util,
                    "capacity": cap, "limiting": max(util, key=util.get)})
    out["nodes"] = rows
    return out


# ---- attention-head (rtl/common/attention_head.py), as AttentionNode instances ---------------
def _attention_inventory(p) -> Inventory:
    """Assumption, not fitted: the lane multipliers, score / normalization / output
    requantizers and the reciprocal's adder; the kernel's memories (K, V caches, scores,
    exponentials, accumulators, exp LUT) from ``storage_bits``."""
    from hwsim.golden.common.attention_head import storage_bits
    return Inventory(adders=(p.av_acc_width,) * p.lanes + (p.recip_bits + 2,),
                     multipliers=((9, 8),) * p.lanes + ((p.qk_acc_width, p.mult_bits),
                                                        (p.av_acc_width, p.recip_bits + 8)),
                     register_bits=64 + 8 * p.head_dim,
                     memories=(("cache", 2 * p.max_len * p.chunks, 8 * p.lanes),
                               ("work", 1, max(1, storage_bits(p)
                                               - 16 * p.max_len * p.head_dim))))


def _attention_fpga(p, tables: Tables) -> dict:
    """Assumption, not fitted: one DSP48E2 per lane multiplier and per requantizer (3),
    ~400 LUTs of control, softmax and divider logic plus 60 per lane, the memories as block
    or LUT RAM by :func:`memory_resources`."""
    from hwsim.golden.common.attention_head import storage_bits
    mem = memory_resources(1, storage_bits(p))
    return {"luts": 400 + 60 * p.lanes + mem["luts"], "ffs": 300 + 40 * p.lanes,
            "dsps": p.lanes + 3, "bram36": mem["bram36"]}


def _attention_actions() -> dict:
    """The priced actions; the rest of the golden counts (softmax steps, Booth partial
    products, DSP MACs counted twice) are priced as free here: an assumption."""
    from hwsim.golden.common.attention_head import AttentionParams, action_counts
    return {k: {} for k in action_counts(AttentionParams(head_dim=4, max_len=4, lanes=4,
                                                         exp_lanes=2), 4)}


ATTENTION_HEAD = Pricing(
    actions={**_attention_actions(), "qk_mac": {"int8_mul": 1, "add16": 1},
             "av_mac": {"int8_mul": 1, "add16": 1},
             "acc_add": {"acc_add": 1}, "score_requant_mul": {"requant_mul": 1},
             "out_requant_mul": {"requant_mul": 1}, "k_read_bits": {"act_read_bits": 1},
             "v_read_bits": {"act_read_bits": 1}, "q_write_bits": {"act_write_bits": 1},
             "out_bits": {"out_bits": 1}},
    inventory=_attention_inventory,
    fpga=_attention_fpga,
    weight_memory="cache",
)
PRICING["attention-head"] = ATTENTION_HEAD


# ---- lif-array (rtl/snn/lif_array.py): weight memory, per-lane accumulate / leak / fire -----
def _lif_inventory(p) -> Inventory:
    """Per lane the current accumulator, the leak's multiply and rounding, the saturating add,
    the compare and the reset; every neuron's accumulator, membrane and refractory counter in
    registers; the weight memory (``inputs·neurons/lanes`` words of ``lanes`` weights)."""
    mw, aw = p.mem.width, p.acc_width
    return Inventory(adders=(aw, mw + p.leak_frac, mw + 1, mw + 1, mw + 1) * p.lanes,
                     multipliers=((mw, p.leak_frac),) * p.lanes,
                     register_bits=p.neurons * (aw + mw + p.ref_width) + 64,
                     memories=(("weights", p.weight_depth, p.lanes * p.weight.width),))


def _lif_fpga(p, tables: Tables) -> dict:
    """Assumption, not fitted: one DSP48E2 per lane (the leak multiply), ~100 LUTs per lane of
    add/round/saturate/compare logic, a chunk multiplexer of ~(acc + mem) bits per neuron / 4
    LUTs, ~80 LUTs of control; the weight memory by the memory rule."""
    mem = memory_resources(p.weight_depth, p.lanes * p.weight.width)
    inv = _lif_inventory(p)
    return {"luts": 80 + 100 * p.lanes + p.neurons * (p.acc_width + p.mem.width) // 4
            + mem["luts"], "ffs": inv.register_bits, "dsps": p.lanes, "bram36": mem["bram36"]}


#: a membrane write is priced as a register read of the same bits (assumption); a synaptic op
#: as a 16-bit add, the leak as an 8-bit multiply (assumptions)
LIF_ARRAY = Pricing(
    actions={"synaptic_op": {"add16": 1}, "lif_update": {"add16": 3}, "leak_mul": {"int8_mul": 1},
             "leak_shift_sub": {"add16": 1}, "weight_read_bits": {"weight_read_bits": 1},
             "mem_read_bits": {"register_read_bits": 1},
             "mem_write_bits": {"register_read_bits": 1}, "event_in": {},
             "out_bits": {"out_bits": 1}, "cycles": {}},
    inventory=_lif_inventory,
    fpga=_lif_fpga,
)
PRICING["lif-array"] = LIF_ARRAY


# ---- rmsnorm (rtl/vitallm/rmsnorm_int.py): squares, division, root, reciprocal, scaling ------
def _rmsnorm_inventory(p) -> Inventory:
    """Per lane the square and the two scaling products; the serial divider, root and
    reciprocal; the vector buffer (with the gains)."""
    xw, gw = p.x.width, p.gamma.width
    return Inventory(
        adders=(p.ss_width,) * p.lanes + (2 * p.n.bit_length() + 2, p.v_width, p.recip_bits + 2),
        multipliers=((xw, xw), (xw, gw), (xw + gw, p.recip_bits + 1)) * p.lanes,
        register_bits=p.ss_width + 3 * p.num_width + 2 * p.v_width + p.recip_bits + 8 * p.lanes,
        memories=(("buffer", p.chunks, (xw + gw) * p.lanes),))


def _rmsnorm_fpga(p, tables: Tables) -> dict:
    """Assumption, not fitted: per lane three DSP48E2 (the square, ``x·γ``, ``·r``) and ~150
    LUTs of rounding/saturation; ~6 LUTs per bit of the divider, root and reciprocal; the
    vector buffer by the memory rule; flip-flops as the inventory's registers."""
    inv = _rmsnorm_inventory(p)
    mem = memory_resources(p.chunks, (p.x.width + p.gamma.width) * p.lanes)
    return {"luts": 150 * p.lanes + 6 * (p.num_width + p.v_width + p.recip_bits) + mem["luts"],
            "ffs": inv.register_bits, "dsps": 3 * p.lanes, "bram36": mem["bram36"]}


PRICING["rmsnorm"] = Pricing(
    actions={"square_mac": {"int8_mul": 1, "add32": 1}, "isqrt": {"add32": 32},
             "reciprocal": {"add32": 32}, "scale_mul": {"mul32": 1},
             "x_read_bits": {"register_read_bits": 1}, "gamma_read_bits": {"weight_read_bits": 1},
             "out_bits": {"out_bits": 1}},
    inventory=_rmsnorm_inventory,
    fpga=_rmsnorm_fpga,
    weight_memory="buffer",
)


from .swiftchannel_design import SWIFTCHANNEL_CONV, SWIFTCHANNEL_GATE  # noqa: E402

PRICING["swiftchannel-conv"], PRICING["swiftchannel-gate"] = SWIFTCHANNEL_CONV, SWIFTCHANNEL_GATE


# ---- maxpool (rtl/common/maxpool.py): a conv-window unit and a running-maximum stage --------
def _maxpool_inventory(p) -> Inventory:
    """Assumption, not fitted: the window unit's inventory (line buffer, counters, two beat
    registers), an 8-bit comparator per lane, the ring of running maxima (one beat of
    ``lanes`` codes per channel beat), the output register and two counters."""
    w = _window_inventory(p.window)
    return Inventory(adders=w.adders + (8,) * p.lanes + (16,) * 2, multipliers=(),
                     register_bits=w.register_bits + 8 * p.lanes * (p.pixel_beats + 1) + 33,
                     memories=w.memories)


def _maxpool_fpga(p, tables: Tables) -> dict:
    """Assumption, not fitted: the window unit's resources, ~12 LUTs per lane of comparator
    and select, ~20 LUTs of counters, and the registers of the inventory."""
    w = _window_fpga(p.window, tables)
    return {"luts": w["luts"] + 12 * p.lanes + 20, "ffs": _maxpool_inventory(p).register_bits,
            "dsps": 0, "bram36": w["bram36"]}


#: a comparison is priced as an 8-bit add, a line-buffer access as the window unit's (an
#: assumption), a running-maximum read as a register read
PRICING["maxpool"] = Pricing(
    actions={"buffer_write_bits": {"weight_read_bits": 1},
             "buffer_read_bits": {"weight_read_bits": 1}, "compare8": {"add8": 1},
             "register_read_bits": {"register_read_bits": 1}, "out_bits": {"out_bits": 1}},
    inventory=_maxpool_inventory,
    fpga=_maxpool_fpga,
    weight_memory="line_buffer",
)


# ---- concat (rtl/common/concat.py): a beat counter, an input select, the output register ----
def _concat_inventory(p) -> Inventory:
    """The beat counter's incrementer and compare, a 2:1 select per output bit, the output beat
    and its valid bit, the counter."""
    return Inventory(adders=(p.count_width,), multipliers=(),
                     register_bits=8 * p.lanes + 1 + p.count_width, memories=(),
                     muxes=8 * p.lanes)


def _concat_fpga(p, tables: Tables) -> dict:
    """Assumption, not fitted: a 2:1 multiplexer per output bit (one LUT each), ~2 LUTs per
    counter bit for the increment, wrap and compare, and the registers of the inventory."""
    return {"luts": 8 * p.lanes + 2 * p.count_width, "ffs": 8 * p.lanes + 1 + p.count_width,
            "dsps": 0, "bram36": 0.0}


#: a code passing is priced as a register read and an output-register write of its bits (an
#: assumption: no arithmetic, no memory)
PRICING["concat"] = Pricing(
    actions={"register_read_bits": {"register_read_bits": 1}, "out_bits": {"out_bits": 1}},
    inventory=_concat_inventory,
    fpga=_concat_fpga,
    weight_memory="",
)


# ---- threshold (rtl/common/threshold.py): comparators, a count, a code ROM per lane ----------
def _threshold_inventory(p) -> Inventory:
    """Per lane: one ``in_bits`` comparator per breakpoint, the count's adder tree (about one
    small adder per breakpoint), the comparison and count registers, the code ROM."""
    m = len(p.breakpoints)
    idx = max(1, m.bit_length())
    return Inventory(adders=((p.in_bits,) * m + (idx,) * max(m - 1, 0)) * p.lanes,
                     multipliers=(), register_bits=(m + idx + 8 + 3) * p.lanes,
                     memories=tuple(("codes", m + 1, 8) for _ in range(p.lanes)))


def _threshold_fpga(p, tables: Tables) -> dict:
    """Assumption, not fitted: a comparison with a constant as ``in_bits / 2`` LUTs (carry
    chain), one LUT per breakpoint for the count, the code ROM as LUT RAM, and the registers
    of the inventory."""
    m = len(p.breakpoints)
    mem = memory_resources(m + 1, 8)
    return {"luts": (m * (p.in_bits // 2) + m + mem["luts"]) * p.lanes,
            "ffs": _threshold_inventory(p).register_bits, "dsps": 0,
            "bram36": mem["bram36"] * p.lanes}


#: a comparison is priced as a 32-bit add (an assumption: a subtract's carry chain), the
#: code read as free (a few LUTs), the output as its bits
PRICING["threshold"] = Pricing(
    actions={"compare": {"add32": 1}, "compare_bits": {}, "lut_read": {},
             "out_bits": {"out_bits": 1}},
    inventory=_threshold_inventory,
    fpga=_threshold_fpga,
    weight_memory="codes",
)


# ---- rope (rtl/common/rope.py): cos/sin ROM, 4 table multiplies per pair, one requantizer --
def _rope_inventory(p) -> Inventory:
    """Four ``8 × (frac+2)`` table multipliers and two adders (one pair per second-half beat),
    the ``acc_width × 17`` requantization multiplier and its rounding adder; registers: the
    first-half code and second-half accumulator shift registers, stage 1, the output and the
    counters; the tables as one ``tokens · half`` word memory (cos | sin)."""
    requant = p.acc_width + 17
    return Inventory(adders=(p.acc_width, p.acc_width, requant),
                     multipliers=((8, p.table_bits),) * 4 + ((p.acc_width, 17),),
                     register_bits=p.half * (8 + p.acc_width) + p.acc_width + 8 + 40,
                     memories=(("tables", p.tokens * p.half, 2 * p.table_bits),))


def _rope_fpga(p, tables: Tables) -> dict:
    """Assumption, not fitted: one DSP per multiplier (4 table products, 1 requantization),
    the two pair adders and the rounding/saturation as about ``3 · acc_width + 60`` LUTs, the
    shift registers as flip-flops, the tables by the memory rule."""
    mem = memory_resources(p.tokens * p.half, 2 * p.table_bits)
    return {"luts": 3 * p.acc_width + 60 + mem["luts"], "ffs": _rope_inventory(p).register_bits,
            "dsps": 5, "bram36": mem["bram36"]}


#: assumed, not fitted: per code 2 table multiplies (an ``8 × (frac+2)`` product priced as an
#: int8 multiply) + 1 pair add (a 32-bit add) + 1 requantization multiply; the ROM of
#: ``2 · tokens · half`` words read as weights; the shift registers as activation registers
PRICING["rope"] = Pricing(
    actions={"table_mul": {"int8_mul": 1}, "acc_add": {"add32": 1},
             "requant_mul": {"requant_mul": 1}, "table_read_bits": {"weight_read_bits": 1},
             "buffer_write_bits": {"act_write_bits": 1},
             "buffer_read_bits": {"act_read_bits": 1}, "out_bits": {"out_bits": 1}},
    inventory=_rope_inventory,
    fpga=_rope_fpga,
    weight_memory="tables",
)
