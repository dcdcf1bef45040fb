"""The estimator: workload action counts × energy tables, cycles against a DRAM roofline.

For every op of a workload, on an architecture:

1. **compute cycles and actions** come from the registered kernel that prices the op
   (:func:`hwsim.estimate.kernels.cost`);
2. **off-chip traffic** comes from the memory model below (:func:`_offchip_bits`), split by
   access pattern; the op takes ``max(compute, Σ traffic_p / bandwidth-per-cycle_p)`` cycles —
   double-buffered streaming, so the larger of the two bounds holds (the op's roofline verdict
   says which). The sustained bandwidth of a pattern is :meth:`Arch.dram_bandwidth`: the
   interface's peak × the controller's efficiency for that pattern (FPGA: at most what the
   AXI ports carry);
3. **energy** is Σ count × energy-per-action (:func:`action_energy`), plus the on-chip buffer
   writes of what comes from DRAM, plus DRAM energy per bit (reported apart: the on-chip figure
   is what a chip's core power measures), plus leakage as a stated fraction of dynamic energy.

Memory model (named assumptions, stated once):

* weights stay on chip when the whole model's packed weights fit the weight buffer; otherwise
  every projection streams its weights from DRAM once per pass;
* a prefill pass holds ``T = floor(activation buffer / ((in + out) · 8 bit))`` tokens (≥ 1), so
  a projection's weights are fetched ``ceil(tokens / T)`` times; activations that do not all fit
  the activation buffer go to DRAM and back once per projection;
* the KV cache stays on chip when all layers' K and V fit the KV buffer, otherwise every
  attention op reads its K/V from DRAM and writes the new ones back.

Access patterns: weight streams, activation spills and a dense KV read (every cached row of a
head, stored one after the other) are sequential; the rows a sparse decode selects (one K or V
row of ``head_dim`` bytes each) and a decode step's new K/V rows are random.

Layer schedule: ops of one core run one after the other; with ``schedule.overlap_attention``
the Booth core's attention overlaps the ternary core (head-level pipelining), and with
``schedule.hide_nonlinear`` softmax and norms are hidden behind the matrix work (their energy
still counts). The cores share one DRAM, so a layer never takes fewer cycles than all its
off-chip traffic needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .arch import Arch
from .kernels import cost
from .tables import Tables
from .workload import Op, Workload

__all__ = ["OpResult", "PhaseResult", "action_energy", "run_phase"]


@dataclass
class OpResult:
    name: str
    kernel: str
    core: str
    repeat: int                 # how many times the layer (and so the op) runs
    compute_cycles: int
    memory_cycles: float
    cycles: float               # max of the two
    offchip_bits: float
    macs: int
    core_energy_j: float
    dram_energy_j: float

    @property
    def bound(self) -> str:
        return "memory" if self.memory_cycles > self.compute_cycles else "compute"

    @property
    def intensity(self) -> float:
        """MACs per off-chip byte (∞ when nothing leaves the chip)."""
        return self.macs / (self.offchip_bits / 8) if self.offchip_bits else math.inf


@dataclass
class LayerResult:
    name: str
    repeat: int
    ops: list[OpResult]
    cycles: float               # one instance, after the schedule's overlaps
    scheduled_compute: float = 0.0  # the cores' cycles after the overlaps, before the DRAM bound

    @property
    def compute_cycles(self) -> int:
        return sum(o.compute_cycles for o in self.ops)

    @property
    def memory_cycles(self) -> float:
        return sum(o.memory_cycles for o in self.ops)

    @property
    def bound(self) -> str:
        """``memory`` when the layer's DRAM traffic, not its scheduled compute, sets its time."""
        return "memory" if self.memory_cycles > self.scheduled_compute else "compute"


@dataclass
class PhaseResult:
    phase: str
    tokens: int
    context: int
    clock_hz: float
    layers: list[LayerResult] = field(default_factory=list)
    leakage_j: float = 0.0

    @property
    def cycles(self) -> float:
        return sum(l.cycles * l.repeat for l in self.layers)

    @property
    def seconds(self) -> float:
        return self.cycles / self.clock_hz

    @property
    def core_energy_j(self) -> float:
        return sum(o.core_energy_j * l.repeat for l in self.layers for o in l.ops) + self.leakage_j

    @property
    def dram_energy_j(self) -> float:
        return sum(o.dram_energy_j * l.repeat for l in self.layers for o in l.ops)

    @property
    def offchip_bits(self) -> float:
        return sum(o.offchip_bits * l.repeat for l in self.layers for o in l.ops)

    @property
    def macs(self) -> int:
        return sum(o.macs * l.repeat for l in self.layers for o in l.ops)


# ------------------------------------------------------------------------------------------
def action_energy(arch: Arch, tables: Tables) -> dict[str, float]:
    """Joules per action of :data:`hwsim.estimate.kernels.ACTIONS` on ``arch``."""
    if arch.kind == "asic":
        node, v = arch["technology.node"], arch["technology.voltage"]

        def e(key):
            return tables.energy(key, node, v)

        reg = e("register_bit")
        # every tile has its own slice of the weight buffer, as every TernaryMVU has its wmem
        w_bank = arch["sram.weights"] / arch["tint.tiles"]
        return {
            "ternary_add": e("add8"), "ternary_skip": 0.0, "acc_add": e("add32"),
            "weight_read_bits": tables.sram_energy_bit(w_bank, node, v),
            "act_read_bits": reg, "act_write_bits": reg, "requant_mul": e("mul32"),
            "out_bits": tables.sram_energy_bit(arch["sram.activations"], node, v),
            "int8_mul": e("mul8"), "add32": e("add32"), "mul32": e("mul32"),
            "register_read_bits": reg, "add8": e("add8"), "add16": e("add16"),
            # buffer traffic the engine adds itself
            "weight_fill_bits": tables.sram_energy_bit(w_bank, node, v),
            "act_fill_bits": tables.sram_energy_bit(arch["sram.activations"], node, v),
            "kv_bits": tables.sram_energy_bit(arch["sram.kv"], node, v),
        }
    r = tables.raw
    lut, ff, rate = r("energy.lut_toggle"), r("energy.ff_toggle"), r("energy.toggle_rate")
    add32 = 32 * rate * (lut + ff + r("energy.carry_toggle") / 8)
    bram = r("energy.bram_bit")
    return {
        # a lane's add: one LUT per bit of the ~12-bit tree input, toggling at `rate`
        "ternary_add": 12 * rate * (lut + r("energy.carry_toggle") / 8), "ternary_skip": 0.0,
        "acc_add": add32, "weight_read_bits": bram, "act_read_bits": rate * ff,
        "act_write_bits": rate * ff, "requant_mul": 4 * r("energy.dsp_mac"), "out_bits": bram,
        "int8_mul": r("energy.dsp_mac"), "add32": add32, "mul32": 4 * r("energy.dsp_mac"),
        "register_read_bits": rate * ff, "add8": add32 / 4, "add16": add32 / 2,
        "weight_fill_bits": bram, "act_fill_bits": bram, "kv_bits": bram,
    }


#: the access patterns the DRAM model prices (``dram.efficiency.<pattern>``)
PATTERNS = ("sequential_read", "random_read", "sequential_write", "random_write")


def traffic_by_pattern(op: Op, wbits: float, abits: float, kvbits: float) -> dict[str, float]:
    """The op's off-chip bits by access pattern (see the module's memory model)."""
    out = dict.fromkeys(PATTERNS, 0.0)
    out["sequential_read"] += wbits
    if abits:
        width = op.in_width + op.out_width
        out["sequential_read"] += abits * op.in_width / width
        out["sequential_write"] += abits * op.out_width / width
    if kvbits:
        out["random_read" if op.kv_read_random else "sequential_read"] += op.kv_read_bits
        out["random_write" if op.kv_write_random else "sequential_write"] += op.kv_write_bits
    return out


def _offchip_bits(op: Op, wl: Workload, arch: Arch, weights_resident: bool,
                  kv_resident: bool) -> tuple[float, float, float]:
    """(weight, activation, KV-cache) bits moved between DRAM and the chip for ``op``."""
    act_buf = arch["sram.activations"]
    width_bits = (op.in_width + op.out_width) * 8
    weight_bits = 0.0
    if op.weights and not weights_resident:
        per_weight = op.weight_bits if op.weight_bits is not None else arch["dram.weight_bits"]
        tile = max(1, int(act_buf // width_bits)) if width_bits else op.vectors
        passes = -(-op.vectors // tile)
        weight_bits = passes * op.weights * per_weight
    act = 0.0
    if width_bits and op.vectors * width_bits > act_buf and op.vectors > 1:
        act = float(op.vectors * width_bits)
    kv = 0.0 if kv_resident else float(op.kv_read_bits + op.kv_write_bits)
    return weight_bits, act, kv


def run_phase(wl: Workload, arch: Arch, tables: Tables,
              energy: dict[str, float] | None = None) -> PhaseResult:
    energy = energy or action_energy(arch, tables)
    clock = arch["clock"]
    bits_per_cycle = {p: arch.dram_bandwidth(p) / clock for p in PATTERNS}
    packed = sum(op.weights * (op.weight_bits if op.weight_bits is not None
                               else arch["dram.weight_bits"]) * l.count
                 for l in wl.layers for op in l.ops)
    weights_resident = packed <= arch["sram.weights"]
    kv_total = sum((op.kv_read_bits + op.kv_write_bits) * l.count
                   for l in wl.layers for op in l.ops)
    kv_resident = kv_total <= arch["sram.kv"]
    dram_e = arch["dram.energy"]
    result = PhaseResult(wl.phase, wl.tokens, wl.context, clock)
    dynamic = 0.0
    for layer in wl.layers:
        ops = []
        per_core = {"tint": 0.0, "booth": 0.0, "nonlinear": 0.0}
        for op in layer.ops:
            kc = cost(op.kernel, op.shape, op.vectors, arch)
            wbits, abits, kvbits = _offchip_bits(op, wl, arch, weights_resident, kv_resident)
            off = wbits + abits + kvbits
            mem_cycles = sum(b / bits_per_cycle[p]
                             for p, b in traffic_by_pattern(op, wbits, abits, kvbits).items())
            e_core = sum(n * energy[a] for a, n in kc.actions.items())
            # what arrives from DRAM is written into its buffer; K/V are then read from theirs
            e_core += wbits * energy["weight_fill_bits"] + abits * energy["act_fill_bits"]
            e_core += (kvbits + op.kv_read_bits + op.kv_write_bits) * energy["kv_bits"]
            if kc.kernel == "ternary_mvu":
                macs = op.weights * op.vectors
            else:
                macs = kc.actions.get("int8_mul", 0) if kc.kernel == "int8_matmul" else 0
            r = OpResult(op.name, kc.kernel, kc.core, layer.count, kc.cycles, mem_cycles,
                         max(kc.cycles, mem_cycles), off, macs, e_core, off * dram_e)
            ops.append(r)
            per_core[kc.core] += r.cycles
            dynamic += e_core * layer.count
        if arch["schedule.overlap_attention"]:
            cyc = max(per_core["tint"], per_core["booth"])
        else:
            cyc = per_core["tint"] + per_core["booth"]
        if not arch["schedule.hide_nonlinear"]:
            cyc += per_core["nonlinear"]
        # the cores share one DRAM: overlapping compute cannot overlap their traffic
        sched = cyc
        cyc = max(cyc, sum(o.memory_cycles for o in ops))
        result.layers.append(LayerResult(layer.name, layer.count, ops, cyc, sched))
    if arch.kind == "asic":
        result.leakage_j = dynamic * arch["power.leakage_fraction"]
    else:
        result.leakage_j = arch["power.static"] * result.seconds
    return result
