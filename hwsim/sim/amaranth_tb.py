"""A kernel's cocotb testbench, unchanged, in Amaranth's own simulator.

:func:`simulate_amaranth` runs the same plan, driver, monitor and checker as
:func:`hwsim.sim.runner.simulate` — the kernel's ``hwsim/sim/tb_*.py`` — on the Amaranth
component itself instead of its emitted Verilog: no Verilog, no simulator process. It gives the
testbench a stand-in for cocotb's ``dut`` (``dut.x__valid`` is the ``valid`` of the
component's port ``x``; ``dut.rst`` the reset of its ``sync`` domain) and for the triggers the
testbenches await (``FallingEdge``, ``ReadOnly``, ``RisingEdge``), with the same timing: on the
falling edge the testbench drives, in the read-only phase it samples the settled signals, and
the rising edge commits. The Amaranth tier of the registry-wide tests uses it.

Limits: only the part of cocotb's API that :mod:`hwsim.sim.streams`,
:mod:`hwsim.sim.checker` and the ``tb_*`` modules use; signals always resolve (no X/Z).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import os
from pathlib import Path

from amaranth.hdl import ClockDomain, Module, Value
from amaranth.sim import Simulator

from hwsim.errors import HwsimError
from hwsim.sim.plan import write_plan
from hwsim.sim.runner import SimReport

__all__ = ["simulate_amaranth"]


class _Bits:
    """A sampled signal value, as cocotb's ``handle.value`` gives it."""

    is_resolvable = True

    def __init__(self, bits: int, width: int):
        self.bits, self.width = bits, width

    def __int__(self) -> int:
        return self.bits

    __index__ = __int__

    def to_unsigned(self) -> int:
        return self.bits

    def to_signed(self) -> int:
        top = 1 << (self.width - 1) if self.width else 0
        return self.bits - (top << 1) if self.bits & top else self.bits


class _Handle:
    """One signal of the design under test, read and written through ``.value``."""

    def __init__(self, bench: _Bench, signal: Value, name: str):
        self._bench, self._signal, self._name = bench, signal, name
        self._width = len(signal)

    def __len__(self) -> int:
        return self._width

    @property
    def value(self) -> _Bits:
        bits = int(self._bench.ctx.get(self._signal)) & ((1 << self._width) - 1)
        return _Bits(bits, self._width)

    @value.setter
    def value(self, v) -> None:
        v = int(v)
        if self._signal.shape().signed:
            v = _Bits(v & ((1 << self._width) - 1), self._width).to_signed()
        self._bench.ctx.set(self._signal, v)


class _Dut:
    """cocotb's ``dut`` over an Amaranth component: ``port__member`` names its members."""

    def __init__(self, bench: _Bench, component, domain: ClockDomain):
        self._bench, self._component, self._domain = bench, component, domain

    def __getattr__(self, name: str):
        if name == "clk":
            return self._domain.clk
        if name == "rst":
            return _Handle(self._bench, self._domain.rst, name)
        obj = self._component
        for part in name.split("__"):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise AttributeError(f"the design has no signal {name!r}") from None
        signal = obj.as_value() if hasattr(obj, "as_value") else Value.cast(obj)
        return _Handle(self._bench, signal, name)


class _Bench:
    """The clock phase the testbench is in, and the triggers that move it."""

    def __init__(self):
        self.ctx = None
        self.after_fall = False  # drove this cycle already: the next falling edge is a cycle on

    async def falling(self) -> None:
        if self.after_fall:
            await self.ctx.tick()
        self.after_fall = True

    async def rising(self) -> None:
        await self.ctx.tick()
        self.after_fall = False

    def trigger(self, method):
        bench = self

        class Trigger:
            def __init__(self, *_args, **_kwargs):
                pass

            def __await__(self):
                return getattr(bench, method)().__await__()

        return Trigger

    def read_only(self):
        class ReadOnly:
            def __await__(self):  # values read in a testbench are always settled
                return iter(())

        return ReadOnly


class _Clock:
    """cocotb's ``Clock``: the Amaranth simulator clocks the domain itself."""

    def __init__(self, *_args, **_kwargs):
        pass

    def start(self, *_args, **_kwargs) -> None:
        return None


def _start_soon(coro) -> None:
    """cocotb's ``start_soon``: only clocks are started, and those are already running."""
    if coro is not None:
        raise HwsimError("the Amaranth testbench stand-in starts no background coroutines")


@contextlib.contextmanager
def _cocotb_stand_in(bench: _Bench, tb_module, plan: Path):
    """cocotb's triggers, ``Clock`` and ``start_soon`` replaced while the testbench runs."""
    import cocotb
    import cocotb.clock
    import cocotb.triggers

    patches = [(cocotb.triggers, "FallingEdge", bench.trigger("falling")),
               (cocotb.triggers, "RisingEdge", bench.trigger("rising")),
               (cocotb.triggers, "ReadOnly", bench.read_only()),
               (cocotb.clock, "Clock", _Clock), (cocotb, "start_soon", _start_soon)]
    if hasattr(tb_module, "Clock"):
        patches.append((tb_module, "Clock", _Clock))
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
    old_plan = os.environ.get("HWSIM_PLAN")
    try:
        for obj, name, value in patches:
            setattr(obj, name, value)
        os.environ["HWSIM_PLAN"] = str(plan)
        yield
    finally:
        for obj, name, value in saved:
            setattr(obj, name, value)
        if old_plan is None:
            os.environ.pop("HWSIM_PLAN", None)
        else:
            os.environ["HWSIM_PLAN"] = old_plan


def _cocotb_test(tb_module):
    """The one ``@cocotb.test()`` coroutine function of a testbench module."""
    found = [v.func for v in vars(tb_module).values()
             if inspect.iscoroutinefunction(getattr(v, "func", None))]
    if len(found) != 1:
        raise HwsimError(f"{tb_module.__name__} has {len(found)} cocotb tests, expected one")
    return found[0]


def simulate_amaranth(kernel, params, cases: list[dict], build: Path) -> SimReport:
    """Run ``kernel``'s cocotb testbench on its Amaranth component in Amaranth's simulator.

    ``cases`` as for :func:`hwsim.sim.runner.simulate`; the plan and ``result.json`` are
    written under ``build/amaranth``. The report's ``passed`` says every case was bit-exact
    and every timed case on the formula.
    """
    folder = Path(build).resolve() / "amaranth"
    plan = write_plan(folder, kernel.name, params, cases)
    tb_module = importlib.import_module(kernel.testbench)
    test = _cocotb_test(tb_module)

    bench = _Bench()
    m = Module()
    m.domains.sync = domain = ClockDomain("sync")
    m.submodules.dut = component = kernel.component(params)
    dut = _Dut(bench, component, domain)
    failed: list[str] = []

    async def testbench(ctx):
        bench.ctx = ctx
        try:
            await test(dut)
        except AssertionError as e:  # the checker's verdict; result.json has the details
            failed.append(str(e))

    sim = Simulator(m)
    sim.add_clock(1e-8, domain="sync")
    sim.add_testbench(testbench)
    with _cocotb_stand_in(bench, tb_module, plan):
        sim.run()
    result_path = folder / "result.json"
    if not result_path.exists():
        raise HwsimError(f"Amaranth run of {kernel.name} produced no result: {failed}")
    result = json.loads(result_path.read_text())
    return SimReport(kernel=kernel.name, sim="amaranth", passed=not result["failures"],
                     cases=result["cases"], failures=result["failures"], folder=folder)
