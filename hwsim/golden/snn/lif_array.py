"""Integer leaky integrate-and-fire neurons driven by spike events (the SNN layer's datapath).

The spiking classifier of arXiv 2605.06005 (conv → Leaky → FC → Leaky → FC → Leaky, β = 0.92)
on integers: every layer is a *spike-driven layer* followed by an array of LIF neurons. This
module is the specification of the ``LIFArray`` RTL in :mod:`rtl.snn.lif_array`, of its cycle
formula and of the estimator's action counts.

Per time step ``t`` and neuron ``j`` (all integers; ``W`` holds weight codes, ``θ`` is the
threshold code, the membrane ``v`` is a ``mem`` QType code):

* spike-driven layer (additions only): ``I[j] = Σ_{e ∈ events(t)} W[j, addr(e)]`` — each input
  event (an address, repeated addresses add again) adds one weight column; no multiplier;
* leak: ``mul`` mode ``v ← round_shift(v · B, F, mem.rounding)`` (β ≈ ``B · 2**-F``), or
  ``shift`` mode ``v ← v − (v >> k)`` (β = 1 − 2**-k, an arithmetic shift and a subtract);
* integrate: ``u = mem.fit(leak(v) + I)`` (saturating) unless the neuron is refractory, in which
  case the input is ignored and ``u = leak(v)``;
* fire: ``s = u > θ`` (strict, as snnTorch's Heaviside);
* reset: ``v ← u − θ`` (``subtract``, snnTorch's default with ``reset_delay=False``) or ``0``
  (``zero``) where ``s``, else ``v ← u``; a spiking neuron is then refractory for
  ``refractory`` steps.

Contract (``tests/golden/test_lif_array.py``, the Amaranth and cocotb tests): integer codes in,
integer codes out; RTL == golden with ``==`` on every spike and membrane code; the quantized
torch model (:mod:`models.snn.classifier`) computes the same integers and so predicts the same
classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError
from hwsim.golden.common.lanes import pack_lanes
from quant.qtype import QType, Rounding, round_shift

__all__ = [
    "PIPELINE_DEPTH",
    "RTL_MAX_WIDTH",
    "LifParams",
    "action_counts",
    "events_from_counts",
    "leak",
    "lif_array",
    "lif_step",
    "rtl_limits",
    "spiking_layer",
    "step_cycles",
    "storage_bits",
    "stream_cycles",
    "weight_words",
]

#: Register stages from a step's last issue cycle to its last output beat: weight-memory read,
#: then the accumulate / LIF-update stage whose result is the output register.
PIPELINE_DEPTH = 2

@dataclass(frozen=True)
class LifParams:
    """Elaboration parameters of a spike-driven LIF neuron array.

    Parameters
    ----------
    neurons : int
        Neurons ``N`` in the array (rows of ``W``).
    inputs : int
        Input addresses ``M`` (columns of ``W``); also the most events one time step may hold.
    lanes : int
        Neurons accumulated or updated per cycle; must divide ``neurons``.
    weight_bits : int
        Width of the signed weight codes (8 or 4 in the paper's QAT); see :attr:`weight`.
    mem_bits : int
        Width of the signed, saturating membrane codes; see :attr:`mem`.
    leak_rounding : str
        :class:`quant.qtype.Rounding` value used by the ``mul`` leak (default ``half_up``).
    threshold : int
        Firing threshold code ``θ`` (1 … mem.max_code); a neuron fires when ``u > θ``.
    leak_mode : str
        ``"mul"``: ``v · leak_mult · 2**-leak_frac``; ``"shift"``: ``v − (v >> leak_shift)``.
    leak_mult, leak_frac : int
        Fixed-point β for ``mul`` mode (default 236 · 2**-8 = 0.921875 ≈ 0.92).
    leak_shift : int
        ``k`` of ``shift`` mode (β = 1 − 2**-k).
    reset : str
        ``"subtract"`` (v − θ) or ``"zero"``.
    refractory : int
        Steps a neuron ignores its input after a spike (0: none, the classifier's setting).

    Raises
    ------
    HwsimError
        On sizes < 1, lanes that do not divide neurons, unsigned or fractional formats, a
        threshold outside the membrane range or an impossible leak.
    """

    neurons: int = 16
    inputs: int = 64
    lanes: int = 4
    weight_bits: int = 8
    mem_bits: int = 16
    leak_rounding: str = "half_up"
    threshold: int = 64
    leak_mode: str = "mul"
    leak_mult: int = 236
    leak_frac: int = 8
    leak_shift: int = 4
    reset: str = "subtract"
    refractory: int = 0

    def __post_init__(self):
        for name in ("neurons", "inputs", "lanes", "weight_bits", "mem_bits", "threshold",
                     "leak_mult", "leak_frac", "leak_shift", "refractory"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise HwsimError(f"lif-array {name} must be an integer, not {v!r}")
        for name in ("neurons", "inputs", "lanes", "leak_shift"):
            if getattr(self, name) < 1:
                raise HwsimError(f"lif-array {name} must be at least 1, not {getattr(self, name)}")
        if self.neurons % self.lanes:
            raise HwsimError(f"lif-array lanes ({self.lanes}) must divide neurons ({self.neurons})")
        if not 2 <= self.weight_bits <= 16:
            raise HwsimError(f"lif-array weight_bits must be 2 … 16, not {self.weight_bits}")
        if not 2 <= self.mem_bits <= 32:
            raise HwsimError(f"lif-array mem_bits must be 2 … 32, not {self.mem_bits}")
        if self.leak_rounding not in {r.value for r in Rounding}:
            raise HwsimError(f"lif-array leak_rounding must be one of "
                             f"{', '.join(r.value for r in Rounding)}, not {self.leak_rounding!r}")
        if not 1 <= self.threshold <= self.mem.max_code:
            raise HwsimError(f"lif-array threshold {self.threshold} is outside 1 … "
                             f"{self.mem.max_code} of the {self.mem} membrane")
        if self.leak_mode not in ("mul", "shift"):
            raise HwsimError(f"lif-array leak_mode must be 'mul' or 'shift', not {self.leak_mode!r}")
        if self.leak_mode == "mul" and not (0 <= self.leak_mult < (1 << self.leak_frac)
                                            and 1 <= self.leak_frac <= 16):
            raise HwsimError(f"lif-array leak must be 0 ≤ leak_mult < 2**leak_frac with "
                             f"leak_frac 1 … 16, not {self.leak_mult}, {self.leak_frac}")
        if self.leak_mode == "shift" and self.leak_shift >= self.mem.width:
            raise HwsimError(f"lif-array leak_shift must be below the membrane width "
                             f"({self.mem.width}), not {self.leak_shift}")
        if self.reset not in ("subtract", "zero"):
            raise HwsimError(f"lif-array reset must be 'subtract' or 'zero', not {self.reset!r}")
        if not 0 <= self.refractory <= 255:
            raise HwsimError(f"lif-array refractory must be 0 … 255 steps, not {self.refractory}")

    @property
    def weight(self) -> QType:
        """Weight code format: signed ``weight_bits`` integers."""
        return QType(self.weight_bits)

    @property
    def mem(self) -> QType:
        """Membrane code format: signed ``mem_bits`` integers, saturating, leak rounding."""
        return QType(self.mem_bits, rounding=Rounding(self.leak_rounding))

    @property
    def chunks(self) -> int:
        """Cycles per event and per LIF update: ``neurons / lanes``."""
        return self.neurons // self.lanes

    @property
    def acc_width(self) -> int:
        """Signed current-accumulator bits: ``inputs`` events of the largest weight fit."""
        return (self.inputs * (1 << (self.weight.width - 1))).bit_length() + 1

    @property
    def ref_width(self) -> int:
        return max(self.refractory.bit_length(), 1)

    @property
    def beta(self) -> float:
        """The real leak factor the integer leak stands for."""
        if self.leak_mode == "mul":
            return self.leak_mult / (1 << self.leak_frac)
        return 1.0 - 2.0 ** -self.leak_shift

    @property
    def weight_depth(self) -> int:
        return self.inputs * self.chunks


# ------------------------------------------------------------------------------------------
# The functions
def _check_weights(w, p: LifParams) -> np.ndarray:
    w = np.asarray(w)
    if w.shape != (p.neurons, p.inputs):
        raise HwsimError(f"LIF weights must have shape ({p.neurons}, {p.inputs}), not {w.shape}")
    return p.weight.check(w, "LIF weight codes")


def _check_events(events, p: LifParams) -> np.ndarray:
    e = np.asarray(events)
    if e.ndim != 1 or (e.size and e.dtype.kind not in "iu"):
        raise HwsimError(f"a step's events must be a 1-D array of integer addresses, "
                         f"got shape {e.shape} dtype {e.dtype}")
    e = e.astype(np.int64)
    if e.size > p.inputs:
        raise HwsimError(f"a step holds {e.size} events, more than inputs ({p.inputs})")
    if e.size and (e.min() < 0 or e.max() >= p.inputs):
        raise HwsimError(f"event address {int(e.min() if e.min() < 0 else e.max())} is outside "
                         f"0 … {p.inputs - 1}")
    return e


def spiking_layer(w, events, p: LifParams) -> np.ndarray:
    """Synaptic currents ``I[j] = Σ_e W[j, e]`` for one step's event addresses (additions only).

    ``w``: (neurons, inputs) weight codes; ``events``: 1-D addresses. Returns (neurons,) int64.
    """
    w = _check_weights(w, p)
    e = _check_events(events, p)
    return w[:, e].sum(axis=1, dtype=np.int64)


def leak(v, p: LifParams) -> np.ndarray:
    """The integer leak ``β · v`` (see the module docstring)."""
    v = np.asarray(v, dtype=np.int64)
    if p.leak_mode == "mul":
        return round_shift(v * p.leak_mult, p.leak_frac, p.mem.rounding)
    return v - (v >> p.leak_shift)


def lif_step(v, ref, current, p: LifParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One LIF update: ``(v, ref, I) → (v', ref', spikes)``, all int64 arrays of one shape."""
    v = np.asarray(v, dtype=np.int64)
    ref = np.asarray(ref, dtype=np.int64)
    vl = leak(v, p)
    active = ref == 0
    u = np.where(active, p.mem.fit(vl + np.asarray(current, dtype=np.int64)), vl)
    s = active & (u > p.threshold)
    after = u - p.threshold if p.reset == "subtract" else np.zeros_like(u)
    v_new = np.where(s, after, u)
    ref_new = np.where(s, p.refractory, np.maximum(ref - 1, 0))
    return v_new, ref_new, s.astype(np.int64)


def lif_array(w, steps: Sequence, p: LifParams, v0=None) -> tuple[np.ndarray, np.ndarray]:
    """Golden LIF array over ``len(steps)`` time steps; ``steps[t]`` is step t's event addresses.

    Returns ``(spikes, membranes)``, each (T, neurons) int64: the output spikes of every step and
    the membrane codes after each step's update (what the RTL's output stream carries).
    """
    w = _check_weights(w, p)
    v = np.zeros(p.neurons, np.int64) if v0 is None else p.mem.check(v0, "initial membrane")
    ref = np.zeros(p.neurons, np.int64)
    spikes, mems = [], []
    for ev in steps:
        current = w[:, _check_events(ev, p)].sum(axis=1, dtype=np.int64)
        v, ref, s = lif_step(v, ref, current, p)
        spikes.append(s)
        mems.append(v)
    return (np.array(spikes, np.int64).reshape(len(spikes), p.neurons),
            np.array(mems, np.int64).reshape(len(mems), p.neurons))


def events_from_counts(counts) -> list[np.ndarray]:
    """Per-step event addresses from (T, inputs) non-negative event counts (a count of k gives
    the address k times, in address order): how binned DVS frames become AER events."""
    c = np.asarray(counts)
    if c.ndim != 2 or (c.size and (c.dtype.kind not in "iub" or c.min() < 0)):
        raise HwsimError(f"event counts must be a (T, inputs) array of non-negative integers, "
                         f"not shape {c.shape} dtype {c.dtype}")
    return [np.repeat(np.arange(c.shape[1]), c[t].astype(np.int64)) for t in range(c.shape[0])]


# ------------------------------------------------------------------------------------------
# Storage format
def weight_words(w, p: LifParams) -> list[int]:
    """The RTL weight memory image: word ``i·chunks + k`` holds ``W[k·lanes:(k+1)·lanes, i]``,
    lane 0 lowest, each a ``weight.width``-bit two's complement code."""
    w = _check_weights(w, p)
    cols = w.T.reshape(p.inputs, p.chunks, p.lanes)
    return [pack_lanes(chunk, p.weight.width) for col in cols for chunk in col]


# ------------------------------------------------------------------------------------------
# Cycle formulas (the RTL docstring states these; cocotb and the Amaranth tests measure them)
def step_cycles(p: LifParams, events: int) -> int:
    """Issue cycles of one time step with ``events`` input events: each event and the step's
    update take ``neurons / lanes`` cycles."""
    return (events + 1) * p.chunks


def stream_cycles(p: LifParams, events_per_step: Sequence[int]) -> int:
    """Cycles from the first accepted input beat to the last output beat (both counted), with
    no idle input and no back-pressure."""
    return sum(step_cycles(p, int(e)) for e in events_per_step) + PIPELINE_DEPTH


def storage_bits(p: LifParams) -> int:
    """Bits of the RTL's weight memory (``inputs × neurons`` weights) and membrane state."""
    return p.weight_depth * p.lanes * p.weight.width + p.neurons * p.mem.width


def weight_load_cycles(p: LifParams) -> int:
    return p.weight_depth


# ------------------------------------------------------------------------------------------
# Action counts (what the estimator multiplies by its energy tables)
def action_counts(p: LifParams, events_per_step: Sequence[int]) -> dict[str, int]:
    """Hardware actions for one run of ``len(events_per_step)`` steps.

    ``synaptic_op``: one weight addition per (event, neuron) — the SynOps of the SNN
    literature; ``lif_update``: one leak-integrate-fire per neuron and step.
    """
    ev = int(np.sum(events_per_step))
    steps = len(events_per_step)
    return {
        "synaptic_op": ev * p.neurons,
        "lif_update": steps * p.neurons,
        "leak_mul" if p.leak_mode == "mul" else "leak_shift_sub": steps * p.neurons,
        "weight_read_bits": ev * p.neurons * p.weight.width,
        "mem_read_bits": steps * p.neurons * p.mem.width,
        "mem_write_bits": steps * p.neurons * p.mem.width,
        "event_in": ev,
        "out_bits": steps * p.neurons * (1 + p.mem.width),
        "cycles": stream_cycles(p, events_per_step),
    }


#: Widest signal the RTL may hold: Amaranth's netlist numbers the bits of one cell in 16 bits
#: (``amaranth.hdl._nir``), so a wider memory word or port fails with an assertion.
RTL_MAX_WIDTH = 1 << 16


def rtl_limits(p: LifParams) -> list[tuple[str, int, int]]:
    """``(parameter, value, limit)`` of the RTL's elaboration limits: one weight word holds
    ``lanes`` weights."""
    return [("weight word bits (lanes × weight bits)", p.lanes * p.weight.width, RTL_MAX_WIDTH)]
