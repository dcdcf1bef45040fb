"""The shared checker half of every cocotb testbench.

A kernel's testbench supplies ``run_case(dut, params, arrays, rng, idle, stall)`` — driving
its streams and returning what it measured — and ``golden(params, arrays)``;
:func:`check_plan` runs every case of the plan, compares the RTL's integer codes with the
golden codes (``==``) and, for cases without idle input or back-pressure, the measured cycles
with the formula, writes ``result.json`` and fails the cocotb test on any mismatch.

Both checks can fail: :func:`one_cycle_late` gives a kernel whose RTL is its own with one more
register on every output stream (the same codes, one cycle later), which the cycle check must
reject, as a deliberately wrong code is rejected by the code check.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import numpy as np

from hwsim.sim.plan import decode_params, load_case, load_plan, write_result
from hwsim.sim.streams import reset

__all__ = ["check_plan", "one_cycle_late"]


async def check_plan(dut, params_cls, run_case: Callable[..., Awaitable[dict]],
                     golden: Callable[[object, dict], np.ndarray],
                     expected_cycles: Callable[[object, dict], int],
                     inputs: tuple[str, ...], outputs: tuple[str, ...]) -> None:
    """Run the plan of ``HWSIM_PLAN`` against ``dut``.

    ``run_case`` returns at least ``outputs`` (list of ints, in order), ``cycles`` (first input
    beat to last output beat, both counted) and ``sim_cycles``/``wall_s``; extra keys are kept.
    """
    from cocotb.clock import Clock

    plan, folder = load_plan()
    params = decode_params(params_cls, plan["params"])
    cocotb_start(Clock(dut.clk, 10, unit="ns"))
    for name in inputs:
        getattr(dut, f"{name}__valid").value = 0
    for name in outputs:
        getattr(dut, f"{name}__ready").value = 0
    await reset(dut, dut.clk)

    results, failures = [], []
    for case in plan["cases"]:
        arrays = load_case(folder, case)
        rng = np.random.default_rng(case.get("seed", 0))
        idle, stall = case.get("idle", 0.0), case.get("stall", 0.0)
        got = await run_case(dut, params, arrays, rng, idle, stall)
        want = np.asarray(golden(params, arrays), dtype=np.int64).ravel()
        out = np.asarray(got["outputs"], dtype=np.int64).ravel()
        timed = idle == 0 and stall == 0
        exp_cycles = expected_cycles(params, arrays)
        record = {**got, "name": case["name"], "expected_cycles": exp_cycles, "timed": timed,
                  "bit_exact": bool(out.shape == want.shape and np.array_equal(out, want)),
                  "cycles_match": got["cycles"] == exp_cycles, "outputs": out.tolist()}
        if not record["bit_exact"]:
            if out.shape != want.shape:
                failures.append(f"{case['name']}: {out.size} outputs, golden has {want.size}")
            else:
                bad = np.flatnonzero(out != want)[:5]
                failures.append(f"{case['name']}: outputs differ at {bad.tolist()}: "
                                f"rtl {out[bad].tolist()} golden {want[bad].tolist()}")
        if timed and not record["cycles_match"]:
            failures.append(f"{case['name']}: {got['cycles']} cycles, formula says {exp_cycles}")
        results.append(record)
    write_result(folder, {"cases": results, "failures": failures})
    assert not failures, "; ".join(failures)


def cocotb_start(coro_or_clock) -> None:
    import cocotb

    cocotb.start_soon(coro_or_clock.start() if hasattr(coro_or_clock, "start") else coro_or_clock)


# ------------------------------------------------------------------------------------------
# Negative control of the cycle check
_LATE = "OneCycleLate__"


def one_cycle_late(kernel):
    """``kernel`` with its RTL one cycle slower: every output stream passes through one more
    register stage (full throughput, the same codes). Its cocotb run must fail the cycle check
    on every timed case and pass the code check."""
    import dataclasses

    return dataclasses.replace(kernel, component_path=f"{__name__}:{_LATE}{kernel.top}")


def __getattr__(name: str):
    # ``hwsim.sim.checker:OneCycleLate__<top>`` as a kernel's component path: the class is made
    # on first use, so the cocotb testbenches that import this module do not load Amaranth.
    if name.startswith(_LATE):
        return _one_cycle_late_class(name[len(_LATE):])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _one_cycle_late_class(top: str):
    from amaranth.hdl import Module
    from amaranth.lib import stream, wiring
    from amaranth.lib.wiring import In, Out

    from hwsim.kernels import KERNELS

    kernel = next((k for k in KERNELS.values() if k.top == top), None)
    if kernel is None:
        raise AttributeError(f"no kernel has the Verilog top {top!r}")

    class OneCycleLate(wiring.Component):
        """The kernel's RTL with one register slice on each output stream."""

        def __init__(self, params):
            self.params = params
            self._inner = kernel.component(params)
            super().__init__(self._inner.signature)

        def elaborate(self, platform):
            m = Module()
            m.submodules.inner = inner = self._inner
            for name, member in self.signature.members.items():
                ours, theirs = getattr(self, name), getattr(inner, name)
                if member.is_port:
                    if member.flow is In:
                        m.d.comb += theirs.eq(ours)
                    else:
                        m.d.comb += ours.eq(theirs)
                elif member.flow is Out and isinstance(member.signature, stream.Signature):
                    # a register slice: takes a beat whenever its own register is free or taken
                    m.d.comb += theirs.ready.eq(~ours.valid | ours.ready)
                    with m.If(theirs.ready):
                        m.d.sync += [ours.valid.eq(theirs.valid),
                                     ours.payload.eq(theirs.payload)]
                else:  # any other interface (an AXI port): passed through as it is
                    wiring.connect(m, wiring.flipped(ours), theirs)
            return m

    OneCycleLate.__name__ = OneCycleLate.__qualname__ = f"{_LATE}{top}"
    return OneCycleLate
