"""``hwsim estimate MODEL --target TARGET``: latency, energy, power, area or FPGA resources."""

from __future__ import annotations

import argparse
from pathlib import Path

from hwsim.errors import HwsimError

from ._common import output_dir, positive_int, print_json


def register(sub) -> None:
    p = sub.add_parser(
        "estimate", help="latency / energy / area / FPGA-resource estimate of a model on a target",
        description="Estimate decode and prefill of MODEL (bitnet-3b, bitnet-700m, bitnet-1.3b, "
                    "bitnet-2b4t, bitnet-tiny, or an .onnx file) on TARGET (vitallm, xczu28dr, "
                    "xczu48dr, xczu49dr, or an architecture YAML). Prints a table, or one JSON "
                    "object with --json; --sweep explores a grid of parameters.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model", help="model name or .onnx path")
    p.add_argument("--target", required=True, help="architecture name or YAML path")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--prompt", type=positive_int, default=64, help="prefill length (tokens)")
    p.add_argument("--context", type=positive_int, default=128,
                   help="cached tokens a decode step attends to")
    p.add_argument("--lm-head", action="store_true", help="include the int8 LM head")
    p.add_argument("--keep", type=positive_int, default=None,
                   help="sparse decode attention (VitaLLM LO top-K): keep K of the --context "
                        "tokens per query head (BitNet models)")
    p.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE",
                   help="override one parameter (e.g. tint.lanes=32, dram.peak_bandwidth=40GB/s)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--sweep", nargs="+", metavar="KEY=V1,V2",
                   help="sweep a grid (keys: lanes, tiles, booth_lanes, sram_kb, dram_gbps, "
                        "clock_mhz or a parameter path)")
    p.add_argument("--max-points", type=positive_int, default=None,
                   help="largest --sweep grid (default 10000)")
    p.add_argument("--out", type=output_dir, default=None,
                   help="sweep output folder (default build/estimate/MODEL-TARGET-sweep)")
    mode.add_argument("--validate", action="store_true",
                   help="published silicon that ran MODEL on TARGET (bitnet-3b on vitallm or "
                        "slim-llama, bitnet-700m on xck26): published vs estimated at each "
                        "figure's own prompt and context, and the sensitivity to every "
                        "unpublished parameter")
    p.set_defaults(func=_run)


def _overrides(arch, sets: list[str]) -> dict:
    from hwsim.estimate.sweep import parse_sweep

    out = {}
    for s in sets:
        if "," in s.split("=", 1)[-1]:
            raise HwsimError(f"--set {s!r}: one value only (use --sweep for several)")
        for _, _, values in parse_sweep(arch, [s], "--set"):
            out.update(values[0])
    return out


def _run(args) -> int:
    from hwsim.estimate import estimate_arch, load_arch
    from hwsim.limits import MAX_CONTEXT, MAX_PROMPT, check_budget

    check_budget("--prompt", args.prompt, MAX_PROMPT, unit="tokens")  # ranges before any work
    check_budget("--context", args.context, MAX_CONTEXT, unit="tokens")
    arch = load_arch(args.target)
    if args.set:
        arch = arch.with_values(_overrides(arch, args.set), source="--set on the command line")
    if args.keep is not None and (args.validate or args.sweep):
        raise HwsimError("--keep applies to a single estimate, not to --validate or --sweep")
    if args.validate:
        return _validate(args, arch)
    if args.sweep:
        from hwsim.estimate import sweep as sw

        if args.set:
            raise HwsimError("--set and --sweep cannot be combined; edit a copy of the YAML")
        result = sw.run_sweep(args.model, args.target, args.sweep, args.prompt, args.context,
                              args.lm_head, args.max_points)
        out = args.out or Path("build") / "estimate" / f"{Path(args.model).stem}-{arch.name}-sweep"
        files = sw.write_sweep(result, out)
        if args.json:
            print_json({**result, "files": [str(f) for f in files]})
        else:
            print(sw.table(result))
            print("wrote " + ", ".join(str(f) for f in files))
        return 0
    workloads = None
    if args.keep is not None:
        from hwsim.estimate.workload import model_workloads

        if str(args.model).endswith(".onnx"):
            raise HwsimError("--keep needs a BitNet model name, not an ONNX graph")
        workloads = model_workloads(args.model, args.prompt, args.context, args.lm_head,
                                    keep=args.keep)
    est = estimate_arch(args.model, arch, None, args.prompt, args.context, args.lm_head,
                        workloads=workloads)
    if args.json:
        print_json(est.to_dict())
    else:
        from hwsim.estimate.report import format_estimate

        print(format_estimate(est))
    return 0


def _validate(args, arch) -> int:
    from hwsim.estimate import validate as v

    points = v.points_for(args.model, arch.name)
    if not points:
        known = "; ".join(f"{p.name}: {p.model} on {p.target}"
                          for p in map(v.load_point, v.known_points()))
        raise HwsimError(f"no published silicon ran {args.model} on {arch.name} ({known})")
    out = [{"point": p.name, "title": p.title, "model_status": p.model_status,
            "model_source": p.model_source, "validation": v.validation_table(p, arch),
            "sensitivity": v.sensitivity(p, arch)} for p in points]
    if args.json:
        print_json({"points": out, "validation": [r for o in out for r in o["validation"]],
                    "sensitivity": out[0]["sensitivity"]})
        return 0
    for o in out:
        print(f"{o['title']}\nmodel {args.model} ({o['model_status']}: {o['model_source']})\n")
        print(v.format_validation(o["validation"]))
        print()
        print(v.format_sensitivity(o["sensitivity"]))
        print()
    return 0
