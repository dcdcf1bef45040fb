"""docs/CONVENTIONS.md's steps to add a kernel, followed for a trivial one in a temporary
package: a golden module, an Amaranth component, a registry entry. Registered, it is listed by
``hwsim rtl emit --help``, elaborates to Verilog through the CLI, passes the registry-wide
checks and simulates bit-exact against its golden; unregistered, it is gone."""

import sys
import textwrap

import pytest

from hwsim.cli import main
from hwsim.kernels import KERNELS, register_module, unregister

from .test_registry import check_kernel

GOLDEN = '''
"""Golden of the trivial kernel: y = x + 1 (mod 2**width), one cycle."""
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class IncParams:
    width: int = 8


def increment(x, p: IncParams):
    return (np.asarray(x) + 1) % (1 << p.width)


def latency_cycles(p: IncParams) -> int:
    """First input beat to its output beat, both counted."""
    return 2


def action_counts(p: IncParams, beats: int = 1) -> dict:
    return {"add": beats}
'''

RTL = '''
"""RTL of the trivial kernel: a registered incrementer with a valid/ready stream."""
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


class Increment(wiring.Component):
    """x: input codes; y: x + 1, one cycle later."""

    def __init__(self, params):
        self.params = params
        super().__init__({"x": In(stream.Signature(params.width)),
                          "y": Out(stream.Signature(params.width))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.x.ready.eq(~self.y.valid | self.y.ready)
        with m.If(self.x.valid & self.x.ready):
            m.d.sync += [self.y.payload.eq(self.x.payload + 1), self.y.valid.eq(1)]
        with m.Elif(self.y.ready):
            m.d.sync += self.y.valid.eq(0)
        return m
'''

ENTRY = '''
"""Registry entry of the trivial kernel."""
from hwsim.kernels import CliParam, Kernel
from hwsim.kernels._contract import latency, one_at_a_time

import {pkg}.inc_golden as spec


def manifest(p):
    lat = latency(spec.latency_cycles, p, unit="beat", first="x beat", last="y beat")
    return {{"kernel": "trivial-inc", "params": {{"width": p.width}},
             "numeric": {{"function": "{pkg}.inc_golden.increment: y = x + 1 mod 2**width",
                          "rounding": "none", "overflow": "wrap"}},
             "latency": lat, "interval": one_at_a_time(lat, unit="beat")}}


def cases(p, seed=0, quick=False):
    return [{{"name": "ramp", "arrays": {{"x": list(range(4))}}}}]


KERNEL = Kernel(
    name="trivial-inc",
    top="trivial_inc",
    summary="trivial incrementer (the add-a-kernel test)",
    params_cls=spec.IncParams,
    cli_params=(CliParam("width", int, 8, "code width"),),
    component_path="{pkg}.inc_rtl:Increment",
    testbench="{pkg}.tb_inc",
    golden="{pkg}.inc_golden:increment",
    cycles=spec.latency_cycles,
    actions=spec.action_counts,
    manifest=manifest,
    cases=cases,
    test_params=({{"width": 4}},),
)
'''


@pytest.fixture
def trivial_kernel(tmp_path, monkeypatch):
    pkg = "hwsim_trivial_kernel"
    root = tmp_path / pkg
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "inc_golden.py").write_text(textwrap.dedent(GOLDEN))
    (root / "inc_rtl.py").write_text(textwrap.dedent(RTL))
    (root / "inc_kernel.py").write_text(textwrap.dedent(ENTRY.format(pkg=pkg)))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert register_module(f"{pkg}.inc_kernel") == ["trivial-inc"]
    try:
        yield KERNELS["trivial-inc"]
    finally:
        if "trivial-inc" in KERNELS:
            unregister("trivial-inc")
        for name in [m for m in sys.modules if m.split(".")[0] == pkg]:
            del sys.modules[name]


def test_a_registered_kernel_is_listed_emitted_and_checked(trivial_kernel, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["rtl", "emit", "--help"])
    assert "trivial-inc" in capsys.readouterr().out
    assert main(["rtl", "emit", "trivial-inc", "--width", "6", "-o", str(tmp_path / "v")]) == 0
    verilog = (tmp_path / "v" / "trivial_inc.v").read_text()
    assert "module trivial_inc" in verilog
    assert "latency: hwsim_trivial_kernel.inc_golden.latency_cycles = 2 cycles" in \
        capsys.readouterr().out
    check_kernel(trivial_kernel)


def test_a_registered_kernel_simulates_against_its_golden(trivial_kernel):
    from hwsim.sim.amaranth_bench import Sink, Source, run_streams

    p = trivial_kernel.params(width=4)
    dut = trivial_kernel.component(p)
    xs = [0, 7, 15, 3]
    x, y = Source(dut.x, xs), Sink(dut.y, len(xs))
    run_streams(dut, [x], [y])
    golden = trivial_kernel.golden_fn()
    assert list(y.values) == golden(xs, p).tolist()
    assert y.cycles[0] - x.cycles[0] + 1 == trivial_kernel.cycles(p)


def test_unregistered_kernel_is_gone(trivial_kernel):
    assert "trivial-inc" in KERNELS
    assert unregister("trivial-inc") is trivial_kernel
    assert "trivial-inc" not in KERNELS
