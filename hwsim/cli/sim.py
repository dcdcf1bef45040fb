"""``hwsim sim KERNEL --sim icarus|verilator``: run a kernel's cocotb testbench."""

from __future__ import annotations

from ._common import add_kernel_parsers, build_dir, kernel_params, print_json


def register(sub) -> None:
    p = sub.add_parser("sim", help="cocotb simulation of a kernel's RTL against its golden model",
                       description="Emit a kernel's Verilog, run its cocotb testbench on Icarus "
                                   "or Verilator (random data, corner cases, idle input and "
                                   "back-pressure) and report bit-exactness and cycles.")
    ksub = p.add_subparsers(dest="kernel_name", metavar="KERNEL", required=True)

    def setup(kp):
        kp.add_argument("--sim", choices=("icarus", "verilator"), default="icarus",
                        help="HDL simulator")
        kp.add_argument("--waves", action="store_true", help="dump a waveform (FST/VCD)")
        kp.add_argument("--seed", type=int, default=0, help="stimulus seed")
        kp.add_argument("--quick", action="store_true",
                        help="random and back-pressure cases only (skip corner cases)")
        kp.add_argument("-o", "--out", type=build_dir, default="build/sim",
                        help="build folder (Verilog, plan, simulator build, waves)")
        kp.add_argument("--json", action="store_true", help="print one JSON object")
        kp.add_argument("--force", dest="force_limits", action="store_true",
                        help="simulate even past the size and cycle limits")
        kp.set_defaults(func=run_sim)

    add_kernel_parsers(ksub, "{summary}", setup)


def run_sim(args) -> int:
    from hwsim.limits import check_kernel_sim
    from hwsim.sim.runner import check_simulator, simulate

    kernel, params = kernel_params(args)
    check_kernel_sim(kernel, params, args.force_limits)
    check_simulator(args.sim)
    report = simulate(kernel, params, kernel.cases(params, args.seed, args.quick),
                      args.out / kernel.name, sim=args.sim, waves=args.waves)
    if args.json:
        print_json(report.to_dict())
    else:
        print(f"{kernel.name} on {args.sim}: {'PASS' if report.passed else 'FAIL'}")
        print(f"  {'case':<20} {'bit-exact':>9} {'cycles':>9} {'formula':>9}  check")
        for c in report.cases:
            check = ("==" if c["cycles_match"] else "!=") if c["timed"] else "≥ (stalls)"
            print(f"  {c['name']:<20} {'yes' if c['bit_exact'] else 'NO':>9} "
                  f"{c['cycles']:>9} {c['expected_cycles']:>9}  {check}")
        for f in report.failures:
            print(f"  failure: {f}")
        print(f"  build {report.build_s:.1f} s, test {report.test_s:.1f} s, "
              f"{report.cycles_per_s:,.0f} cycles/s")
        if report.waves:
            print(f"  waves: {report.waves}")
    return 0 if report.passed else 1
