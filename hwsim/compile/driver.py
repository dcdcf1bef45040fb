"""``hwsim compile``: one ONNX file → lowered graph, RTL, simulation, estimate and report.

:func:`compile_model` checks everything a user can get wrong first (the file, the ops, the
target, the input sample) and only then writes into the build folder, as a resumable
:class:`hwsim.flow.core.Flow` (a finished step is reused; a killed run never leaves a step
that looks finished):

1. ``frontend`` — the checked, cleaned, fused graph (``graph.onnx``) and its node table;
2. ``lower`` — ``lowered.onnx`` (the dialect graph, verified after every step), the input
   sample as float and as codes, the golden output codes, and the deviation of the lowered
   graph from onnxruntime running the original file, in output LSBs;
3. ``rtl`` — the dataflow top's Verilog and manifest (``rtl/``);
4. ``sim`` — cocotb on Icarus or Verilator: RTL codes ``==`` golden, cycles ``==`` formula
   (skipped with ``sim="none"``);
5. ``estimate`` — the compiled design priced on the target;

then ``lowered.onnx``, ``report.md``, ``report.html`` and ``summary.json`` are written at the
top of the build folder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hwsim.errors import HwsimError

__all__ = ["SIMS", "compile_model", "precheck"]

#: simulators ``--sim`` accepts
SIMS = ("none", "icarus", "verilator")
TOP = "compiled_top"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _input_sample(path: Path | None, shape: tuple[int, ...],
                  steps: bool = False) -> np.ndarray | None:
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        raise HwsimError(f"input sample {path} does not exist")
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise HwsimError(f"input sample {path} is not a .npy array ({e})") from None
    if not np.issubdtype(x.dtype, np.number):
        raise HwsimError(f"input sample {path} holds {x.dtype}, not numbers")
    if steps and x.ndim == len(shape) + 1 and x.shape[0] >= 1:  # T time steps
        shape = (x.shape[0], *shape)
    if tuple(x.shape) != tuple(shape):
        raise HwsimError(f"input sample {path} has shape {tuple(x.shape)}; the model's input "
                         f"is {tuple(shape)}")
    if not np.all(np.isfinite(x)):
        raise HwsimError(f"input sample {path} holds NaN or infinite values")
    return x.astype(np.float32)


def precheck(model: Path, target: str, sim: str, input_path: Path | None = None) -> dict:
    """Everything that can be refused before a file is written: the ONNX file (checker,
    supported ops), the target, the simulator, the input sample. Returns the loaded graph
    and the parsed inputs."""
    from hwsim.compile import frontend
    from hwsim.estimate.arch import load_arch

    model = Path(model)
    if sim not in SIMS:
        raise HwsimError(f"unknown simulator {sim!r}; choose one of {', '.join(SIMS)}")
    if not model.is_file():
        raise HwsimError(f"model {model} does not exist")
    arch = load_arch(target)
    graph = frontend.load(model)
    frontend.check_supported(graph)
    from hwsim.compile.lower.lif import state_pairs
    pairs = state_pairs(graph)  # a time step with membranes: hwsim.compile.stateful
    data = graph.graph.input[0].name
    if pairs:
        from hwsim.compile.stateful import split_inputs
        data, pairs = split_inputs(graph, pairs)
    elif len(graph.graph.input) != 1:
        raise HwsimError(f"hwsim compile takes models with one input, not "
                         f"{len(graph.graph.input)}")
    shape = tuple(graph.get_tensor_shape(data))
    if any(not isinstance(d, int) or d < 1 for d in shape):
        raise HwsimError(f"the model's input shape {shape} is not fixed; export it with a "
                         "fixed batch size")
    if sim != "none":
        from hwsim.sim.runner import check_simulator
        check_simulator(sim)
    return {"graph": graph, "arch": arch, "shape": shape, "target": target,
            "x": _input_sample(input_path, shape, bool(pairs)), "pairs": pairs, "data": data,
            "model": model}


def _lower_and_plan(pre: dict, seed: int, max_lanes: int) -> dict:
    """Lower the graph on the input sample (the default sample needs the lowered graph's
    input quantizer: a first lowering on a normal sample finds it) and plan its design; a
    graph the lowering or the back end cannot take raises here, before anything is written."""
    from hwsim.compile import backend
    from hwsim.compile.lower import lower
    g, x = pre["graph"], pre["x"]
    name = g.graph.input[0].name
    if pre.get("pairs"):  # T time steps of one sample, verified on three of them
        from hwsim.compile.stateful import default_frames, reference
        x = x if x is not None else default_frames(pre["shape"], seed)
        ref, feeds = reference(pre["model"], pre["data"], pre["pairs"], x, g)
        lowered, rep = lower(g, verify_inputs=[feeds[0], feeds[len(feeds) // 2], feeds[-1]])
        design = backend.plan(lowered, max_lanes=max_lanes)
        _check_fit(design, pre["target"])
        return {"lowered": lowered, "report": rep, "x": x, "design": design, "ref": ref}
    given = x is not None
    if not given:  # the input quantizer appears after the first step: sample from its codes
        from hwsim.compile.lower import QuantActivationsToCodes
        first, _ = lower(g, steps=[QuantActivationsToCodes()])
        x = _default_sample(first, pre["shape"], seed)
    lowered, rep = lower(g, verify_inputs=[{name: x}])
    if not given and not np.array_equal(_default_sample(lowered, pre["shape"], seed), x):
        # a later step changed the input quantizer: sample from the lowered graph's
        x = _default_sample(lowered, pre["shape"], seed)
        lowered, rep = lower(g, verify_inputs=[{name: x}])
    design = backend.plan(lowered, max_lanes=max_lanes)
    _check_fit(design, pre["target"])
    return {"lowered": lowered, "report": rep, "x": x, "design": design}


def _check_fit(design, target: str) -> None:
    """Refuse a design the FPGA target cannot hold (its estimate), naming the resource."""
    from hwsim.estimate.design import estimate_design
    nodes = [(n.name, n.kernel, n.params, n.vectors * n.calls_per_vector, n.actions)
             for n in design.nodes]
    est = estimate_design(nodes, target)
    if est.get("fits") is False:
        r = est["limiting"]
        raise HwsimError(f"the design does not fit {target}: it needs {est[r]:,.0f} {r} of "
                         f"{est['capacity'][r]:,.0f} (lower --max-lanes or choose a larger "
                         "part)")


def _default_sample(lowered, shape, seed: int) -> np.ndarray:
    """A seeded random sample within the graph input quantizer's range: uniform codes,
    dequantized (so every code of the range is reachable)."""
    name = lowered.graph.input[0].name
    q = next((n for n in lowered.graph.node if n.op_type == "QuantizeLinear"
              and n.input[0] == name), None)
    rng = np.random.default_rng(seed)
    if q is None:
        return rng.standard_normal(shape).astype(np.float32)
    scale = float(np.asarray(lowered.get_initializer(q.input[1])).ravel()[0])
    zero = np.asarray(lowered.get_initializer(q.input[2]))
    info = np.iinfo(zero.dtype)
    codes = rng.integers(info.min, info.max + 1, shape)
    return ((codes - int(zero.ravel()[0])) * scale).astype(np.float32)


def _reference(model: Path, x: np.ndarray) -> tuple[np.ndarray, str]:
    """The original file's output: onnxruntime where it runs the file (QCDQ), else qonnx's
    executor (QONNX ``Quant`` in numpy, every standard node in onnxruntime)."""
    from onnx import numpy_helper

    from quant.onnx import check, run_onnxruntime, run_qonnx
    proto = check(model)
    # an initializer listed among the graph inputs is that input's default value
    inits = {t.name: t for t in proto.graph.initializer}
    data = [i.name for i in proto.graph.input if i.name not in inits]
    feeds = {data[0]: x}
    feeds.update({i.name: numpy_helper.to_array(inits[i.name]) for i in proto.graph.input
                  if i.name in inits})
    try:
        outs = [np.asarray(o) for o in run_onnxruntime(proto, feeds)]
        # beside the real output an integer-ONNX file may give its codes: take the real one
        return next((o for o in outs if o.dtype.kind == "f"), outs[0]), "onnxruntime"
    except Exception:
        pass
    try:  # QONNX: its Quant nodes as QuantizeLinear/Clip/DequantizeLinear, run in onnxruntime
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.transformation.qonnx_to_qcdq import QuantToQCDQ
        qcdq = ModelWrapper(proto).transform(QuantToQCDQ()).model
        if not any(n.op_type in ("Quant", "BipolarQuant", "Trunc") for n in qcdq.graph.node):
            names = {i.name for i in qcdq.graph.input}
            return (np.asarray(run_onnxruntime(qcdq, {k: v for k, v in feeds.items()
                                                      if k in names})[0]),
                    "onnxruntime (Quant nodes as QCDQ)")
    except Exception:
        pass
    return np.asarray(run_qonnx(proto, feeds)[0]), "qonnx executor"


def compile_model(model: Path, target: str, out: Path, input_path: Path | None = None,
                  sim: str = "icarus", max_lanes: int = 8, seed: int = 0,
                  progress: Callable[[str], None] = print, start: str | None = None) -> dict:
    """Compile ``model`` for ``target`` into the build folder ``out``; return the summary."""
    from hwsim.compile import backend, frontend
    from hwsim.flow.core import Flow, Step

    model, out = Path(model), Path(out)
    pre = precheck(model, target, sim, input_path)
    graph = pre["graph"]
    low = _lower_and_plan(pre, seed, max_lanes)
    in_name = graph.graph.input[0].name
    options = {"model_sha": _sha256(model), "target": target, "sim": sim,
               "max_lanes": max_lanes, "seed": seed,
               "input_sha": _sha256(Path(input_path)) if input_path else None}

    def step_frontend(ctx):
        graph.save(str(ctx.folder / "graph.onnx"))
        rows = frontend.summary(graph)
        (ctx.folder / "nodes.json").write_text(json.dumps(rows, indent=1, default=str))
        return {"graph": "graph.onnx", "nodes": len(graph.graph.node), "unsupported": []}

    def step_lower(ctx):
        first, rep, x, design = low["lowered"], low["report"], low["x"], low["design"]
        if pre["pairs"]:
            return _lower_steps(ctx, pre, low)
        first.save(str(ctx.folder / "lowered.onnx"))
        ctx_ = _execute(first, {in_name: x})
        y_low = ctx_[first.graph.output[0].name]
        ref, how = _reference(model, x)
        out_scale = _output_scale(first)
        err = np.abs(y_low.astype(np.float64) - ref.astype(np.float64)) / out_scale
        # X, Y: the input and output codes in the order the design streams them
        # (Design.to_stream: NCHW tensors of a graph with convolutions as NHWC)
        np.savez(ctx.folder / "sample.npz", x=x, X=design.to_stream(ctx_[design.input], "in"),
                 Y=design.to_stream(ctx_[design.output], "out"), y=y_low, ref=ref)
        return {"lowered": "lowered.onnx", "sample": "sample.npz", "steps": rep.to_dict(),
                "reference": how, "max_error_lsb": float(np.max(err, initial=0.0)),
                "output_scale": out_scale}

    def design_of(ctx):
        from qonnx.core.modelwrapper import ModelWrapper
        lowered = ModelWrapper(str(ctx.path_of("lower", "lowered.onnx")))
        return lowered, backend.plan(lowered, max_lanes=max_lanes)

    def step_rtl(ctx):
        from rtl.emit import emit
        _, design = design_of(ctx)
        if pre["pairs"]:  # data-dependent timing: the cycle model on the sample's codes
            from hwsim.compile.backend.lif import schedule_lif
            s = np.load(ctx.path_of("lower", "sample.npz"), allow_pickle=False)
            sched = schedule_lif(design, {n.inputs[0][1]: s[f"c{i}"]
                                          for i, n in enumerate(design.nodes)})
        else:
            sched = backend.schedule(design)
        manifest = {"kernel": "compiled", "nodes": [n.summary() for n in design.nodes],
                    "schedule": sched, "in_shape": list(design.in_shape),
                    "out_shape": list(design.out_shape),
                    "in_perm": list(design.in_perm) if design.in_perm else None,
                    "out_perm": list(design.out_perm) if design.out_perm else None}
        emit(design.component(), TOP, ctx.folder, manifest)
        return {"verilog": f"{TOP}.v", "manifest": f"{TOP}.json", "schedule": sched,
                "nodes": [n.summary() for n in design.nodes]}

    def step_sim(ctx):
        if sim == "none":
            return {"sim": "none", "rtl_equals_golden": None}
        from hwsim.sim.runner import simulate
        _, design = design_of(ctx)
        s = np.load(ctx.path_of("lower", "sample.npz"), allow_pickle=False)
        cycles = ctx.artifacts["rtl"]["schedule"]["cycles"]
        case = {"name": "sample", "arrays": {"X": s["X"], "Y": s["Y"], "cycles": cycles}}
        report = simulate(_CompiledKernel(design), design.top_params, [case], ctx.folder,
                          sim=sim)
        c = report.cases[0] if report.cases else {}
        return {"sim": sim, "rtl_equals_golden": bool(report.passed and c.get("bit_exact")),
                "cycles_measured": c.get("cycles"), "cycles_match": c.get("cycles_match"),
                "failures": report.failures, "build_s": round(report.build_s, 2),
                "test_s": round(report.test_s, 2)}

    def step_estimate(ctx):
        _, design = design_of(ctx)
        sched = ctx.artifacts["rtl"]["schedule"]
        return _estimate(design, pre["arch"], target, sched)

    steps = [Step("frontend", "front end: check, clean, fuse", step_frontend,
                  ("model_sha",)),
             Step("lower", "lower to the hwsim dialect", step_lower,
                  ("seed", "input_sha", "max_lanes")),
             Step("rtl", "dataflow RTL", step_rtl, ("max_lanes",)),
             Step("sim", f"simulate ({sim})", step_sim, ("sim",)),
             Step("estimate", f"estimate on {target}", step_estimate, ("target",))]
    arts = Flow("compile", steps, out, options).run(start=start, progress=progress)
    summary = _summary(arts, target)
    from hwsim.compile.report import write_reports
    write_reports(out, summary)
    return summary


def _lower_steps(ctx, pre: dict, low: dict) -> dict:
    """The ``lower`` step of a time-step graph (:mod:`hwsim.compile.stateful`): the golden
    graph over the sample's steps, its stream codes, and its spikes against onnxruntime's."""
    from hwsim.compile.stateful import run_steps
    first, rep, x, design = low["lowered"], low["report"], low["x"], low["design"]
    first.save(str(ctx.folder / "lowered.onnx"))
    steps = run_steps(first, pre["data"], pre["pairs"], x, _execute)
    y_low = np.array([c[first.graph.output[0].name] for c in steps])
    err = np.abs(y_low.astype(np.float64) - low["ref"].astype(np.float64)) / _output_scale(first)
    codes = {f"c{i}": np.concatenate([np.ravel(c[n.inputs[0][1]]) for c in steps])
             for i, n in enumerate(design.nodes)}
    np.savez(ctx.folder / "sample.npz", x=x, X=codes["c0"],
             Y=np.concatenate([np.ravel(c[design.output]) for c in steps]), y=y_low,
             ref=low["ref"], **codes)
    return {"lowered": "lowered.onnx", "sample": "sample.npz", "steps": rep.to_dict(),
            "reference": "onnxruntime", "max_error_lsb": float(np.max(err, initial=0.0)),
            "output_scale": _output_scale(first), "time_steps": len(steps)}


def _execute(model, inputs: dict) -> dict:
    import contextlib
    import io
    import warnings

    from qonnx.core.onnx_exec import execute_onnx
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return execute_onnx(model, inputs, return_full_exec_context=True)


def _output_scale(lowered) -> float:
    out = lowered.graph.output[0].name
    dq = next((n for n in lowered.graph.node if n.op_type == "DequantizeLinear"
               and n.output[0] == out), None)
    if dq is None:
        return 1.0
    return float(np.asarray(lowered.get_initializer(dq.input[1])).ravel()[0])


class _CompiledKernel:
    """What :func:`hwsim.sim.runner.simulate` needs of a kernel, for a compiled design."""

    name = "compiled"
    top = TOP
    testbench = "hwsim.sim.tb_compiled"

    def __init__(self, design):
        self.design = design

    def component(self, params):
        return self.design.component()

    def manifest(self, params):
        return {"kernel": "compiled", "nodes": [n.summary() for n in self.design.nodes]}


def _estimate(design, arch, target: str, sched: dict) -> dict:
    clock_mhz = float(arch["clock"]) / 1e6 if "clock" in arch.params else None
    out = {"target": target, "cycles": sched["cycles"], "latency_cycles": sched["latency"],
           "interval_cycles": sched["interval"], "clock_mhz": clock_mhz,
           "latency_us": sched["cycles"] / clock_mhz if clock_mhz else None}
    try:
        from hwsim.estimate.design import estimate_design
    except ImportError:
        return {**out, "priced": False}
    nodes = [(n.name, n.kernel, n.params, n.calls, n.actions) for n in design.nodes]
    return {**out, **estimate_design(nodes, target, cycles=sched["cycles"]), "priced": True}


def _summary(arts: dict, target: str) -> dict:
    rtl, low, sim, est = arts["rtl"], arts["lower"], arts["sim"], arts["estimate"]
    kernels = [{"name": n["name"], "op_type": n["op_type"], "kernel": n["kernel"],
                "params": n["params"], "vectors": n["vectors"],
                "cycles_per_vector": n["cycles_per_vector"], "interval": n.get("interval")}
               for n in rtl["nodes"]]
    s = {"nodes": arts["frontend"]["nodes"], "unsupported": [], "kernels": kernels,
         "rtl_equals_golden": sim["rtl_equals_golden"], "sim": sim["sim"],
         "cycles_match": sim.get("cycles_match"),
         "max_error_lsb_vs_onnxruntime": low["max_error_lsb"], "reference": low["reference"],
         "lowering": low["steps"], "cycles": rtl["schedule"]["cycles"],
         "latency_us": est.get("latency_us"), "target": target}
    for key in ("luts", "ffs", "dsps", "brams", "fits", "area_mm2", "energy_uj", "power_mw"):
        if key in est:
            s[key] = est[key]
    return s
