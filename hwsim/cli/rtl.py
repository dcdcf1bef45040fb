"""``hwsim rtl emit KERNEL …``: write a kernel's Verilog and its JSON manifest."""

from __future__ import annotations

import json

from ._common import add_kernel_parsers, kernel_params, output_dir


def register(sub) -> None:
    p = sub.add_parser("rtl", help="generate RTL (Verilog) for a hardware kernel",
                       description="Generate RTL for hwsim's Amaranth components.")
    rsub = p.add_subparsers(dest="rtl_command", metavar="ACTION", required=True)
    emit = rsub.add_parser("emit", help="write Verilog + a JSON manifest (ports, parameters, "
                                        "cycle counts)",
                           description="Elaborate a kernel and write <top>.v and <top>.json.")
    ksub = emit.add_subparsers(dest="kernel_name", metavar="KERNEL", required=True)

    def setup(kp):
        kp.add_argument("-o", "--out", type=output_dir, required=True, help="output folder")
        kp.add_argument("--force", dest="force_limits", action="store_true",
                        help="elaborate even past the size limits (README: Limits)")
        kp.set_defaults(func=run_emit)

    add_kernel_parsers(ksub, "{summary}", setup)


def run_emit(args) -> int:
    from hwsim.limits import check_kernel_design
    from rtl.emit import describe, emit

    kernel, params = kernel_params(args)  # validates before anything is written
    check_kernel_design(kernel, params, args.force_limits)
    paths = emit(kernel.component(params), kernel.top, args.out, kernel.manifest(params))
    print(f"wrote {paths['verilog']}")
    print(f"wrote {paths['manifest']} (fields: docs/rtl-interface.md)")
    print(describe(json.loads(paths["manifest"].read_text())))
    return 0
