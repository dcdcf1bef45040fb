"""One estimate: a model on a target — decode, prefill, energy, power, area or FPGA resources.

:func:`estimate` is what ``hwsim estimate MODEL --target TARGET`` calls. It builds the decode
and prefill workloads, runs both through the engine and adds area (ASIC) or the resource
count with fits / does-not-fit (FPGA). :meth:`Estimate.to_dict` is the ``--json`` object.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hwsim.errors import HwsimError

from .arch import Arch, load_arch
from .area import asic_area
from .engine import PhaseResult, action_energy, run_phase
from .fpga import fpga_resources
from .kernels import kernel_sources
from .tables import Tables, load_tables
from .workload import Workload, model_workloads

__all__ = ["Estimate", "estimate", "estimate_arch"]


@dataclass
class Estimate:
    model: str
    arch: Arch
    decode: PhaseResult
    prefill: PhaseResult
    area: dict[str, float] = field(default_factory=dict)
    resources: dict = field(default_factory=dict)
    workload_notes: dict = field(default_factory=dict)

    # ---- headline figures --------------------------------------------------------------
    @property
    def decode_tokens_per_s(self) -> float:
        return self.decode.tokens / self.decode.seconds

    @property
    def prefill_s(self) -> float:
        return self.prefill.seconds

    @property
    def core_energy_per_token_j(self) -> float:
        return self.decode.core_energy_j / self.decode.tokens

    @property
    def dram_energy_per_token_j(self) -> float:
        return self.decode.dram_energy_j / self.decode.tokens

    @property
    def power_w(self) -> float:
        """On-chip average power during decode (what a chip's core power measures)."""
        return self.decode.core_energy_j / self.decode.seconds

    def metrics(self) -> dict:
        m = {
            "decode_tokens_per_s": self.decode_tokens_per_s,
            "decode_ms_per_token": 1e3 * self.decode.seconds / self.decode.tokens,
            "decode_context": self.decode.context,
            "decode_bound": _phase_bound(self.decode),
            "prefill_tokens": self.prefill.tokens,
            "prefill_s": self.prefill_s,
            "prefill_tokens_per_s": self.prefill.tokens / self.prefill_s,
            "prefill_bound": _phase_bound(self.prefill),
            "energy_per_token_mj": 1e3 * (self.core_energy_per_token_j
                                          + self.dram_energy_per_token_j),
            "core_energy_per_token_mj": 1e3 * self.core_energy_per_token_j,
            "dram_energy_per_token_mj": 1e3 * self.dram_energy_per_token_j,
            "prefill_energy_mj": 1e3 * (self.prefill.core_energy_j + self.prefill.dram_energy_j),
            "power_mw": 1e3 * self.power_w,
            "dram_power_mw": 1e3 * self.decode.dram_energy_j / self.decode.seconds,
            "decode_offchip_mb_per_token": self.decode.offchip_bits / 8 / 1e6,
        }
        if self.arch.kind == "asic":
            m["area_mm2"] = self.area["total"] * 1e6
            m["tops_per_w"] = 2 * self.decode.macs / self.decode.core_energy_j / 1e12
        else:
            r = self.resources
            m.update({k: r[k] for k in ("luts", "ffs", "dsps", "brams", "urams")})
            m["fits"] = r["fits"]
            m["limiting_resource"] = r["limiting"]
        return m

    def to_dict(self) -> dict:
        return {
            "model": self.model, "target": self.arch.name, "kind": self.arch.kind,
            "arch_version": self.arch.version, "tables": self.arch.tables,
            **self.metrics(),
            "area_breakdown_mm2": {k: v * 1e6 for k, v in self.area.items()} or None,
            "resources": self.resources or None,
            "layers": {"decode": _layers(self.decode), "prefill": _layers(self.prefill)},
            "kernel_sources": kernel_sources(),
            "assumptions": {k: {"value": p.text, "status": p.status, "source": p.source,
                                **({"fitted_to": p.fitted_to} if p.fitted_to else {})}
                            for k, p in self.arch.params.items()},
            "workload": self.workload_notes,
        }


def _phase_bound(ph: PhaseResult) -> str:
    comp = sum(l.scheduled_compute * l.repeat for l in ph.layers)
    mem = sum(l.memory_cycles * l.repeat for l in ph.layers)
    return "memory" if mem > comp else "compute"


def _layers(ph: PhaseResult) -> list[dict]:
    out = []
    for l in ph.layers:
        out.append({
            "layer": l.name, "repeat": l.repeat, "cycles": l.cycles,
            "latency_s": l.cycles / ph.clock_hz,
            "compute_cycles": l.compute_cycles, "memory_cycles": l.memory_cycles,
            "bound": l.bound,
            "energy_mj": 1e3 * sum(o.core_energy_j + o.dram_energy_j for o in l.ops),
            "ops": [{"op": o.name, "kernel": o.kernel, "core": o.core,
                     "compute_cycles": o.compute_cycles, "memory_cycles": o.memory_cycles,
                     "bound": o.bound, "offchip_bytes": o.offchip_bits / 8, "macs": o.macs,
                     "macs_per_byte": None if o.intensity == float("inf") else o.intensity,
                     "core_energy_uj": 1e6 * o.core_energy_j,
                     "dram_energy_uj": 1e6 * o.dram_energy_j} for o in l.ops],
        })
    return out


def _max_cols(*wls: Workload) -> int:
    cols = [op.shape["cols"] for wl in wls for l in wl.layers for op in l.ops
            if op.kernel == "ternary_mvu"]
    return max(cols) if cols else 1


def estimate_arch(model: str, arch: Arch, tables: Tables | None = None, prompt: int = 64,
                  context: int = 128, lm_head: bool = False,
                  workloads: tuple[Workload, Workload] | None = None) -> Estimate:
    """Estimate ``model`` on an already loaded architecture (sweeps call this)."""
    tables = tables or load_tables(arch.tables)
    if tables.kind != arch.kind:
        raise HwsimError(f"{arch.name}: table {tables.name} is for {tables.kind}, "
                         f"the target is {arch.kind}")
    dec_wl, pre_wl = workloads or model_workloads(model, prompt, context, lm_head)
    energy = action_energy(arch, tables)
    dec = run_phase(dec_wl, arch, tables, energy)
    pre = run_phase(pre_wl, arch, tables, energy)
    est = Estimate(model, arch, dec, pre, workload_notes={**dec_wl.notes, "lm_head": lm_head})
    if arch.kind == "asic":
        est.area = asic_area(arch, tables, _max_cols(dec_wl, pre_wl))
    else:
        est.resources = fpga_resources(arch, tables, _max_cols(dec_wl, pre_wl))
    return est


def estimate(model: str, target: str, prompt: int = 64, context: int = 128,
             lm_head: bool = False, overrides: dict | None = None) -> Estimate:
    """Estimate ``model`` (``bitnet-3b``…, or an ``.onnx`` path) on ``target`` (``vitallm``,
    ``xczu28dr``… or an architecture YAML path). ``overrides`` maps parameter paths to values
    in SI base units."""
    arch = load_arch(target)
    if overrides:
        arch = arch.with_values(overrides)
    return estimate_arch(model, arch, None, prompt, context, lm_head)
