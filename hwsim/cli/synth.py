"""``hwsim synth asic KERNEL …``: a kernel's RTL mapped onto standard cells, its area."""

from __future__ import annotations

from ._common import add_kernel_parsers, kernel_params, print_json


def register(sub) -> None:
    p = sub.add_parser("synth", help="map a kernel's RTL onto standard cells (ASIC area)",
                       description="Synthesize hwsim's RTL with Yosys onto a cell library.")
    ssub = p.add_subparsers(dest="synth_command", metavar="TARGET", required=True)
    asic = ssub.add_parser(
        "asic", help="cell-mapped area of a kernel (NanGate FreePDK45 cells, scaled to 16 nm)",
        description="Map a kernel's Verilog onto the NanGate FreePDK45 cells of "
                    "hwsim/estimate/tables/cells_nangate45.yaml (memories kept as memories and "
                    "priced as SRAM) and report its area by cell type, at 45 nm and scaled to "
                    "16 nm (docs/estimate.md).")
    ksub = asic.add_subparsers(dest="kernel_name", metavar="KERNEL", required=True)

    def setup(kp):
        kp.add_argument("--json", action="store_true", help="print one JSON object")
        kp.add_argument("--force", dest="force_limits", action="store_true",
                        help="synthesize even past the size limits (README: Limits)")
        kp.set_defaults(func=run_asic)

    add_kernel_parsers(ksub, "{summary}", setup)


def run_asic(args) -> int:
    from hwsim.estimate.netlist import asic_area
    from hwsim.limits import check_kernel_design

    kernel, params = kernel_params(args)
    check_kernel_design(kernel, params, args.force_limits)
    r = asic_area(kernel, params)
    if args.json:
        print_json(r)
        return 0
    print(f"{r['kernel']} on {r['library']} cells ({r['node_nm']:g} nm): {r['cells']:,} cells, "
          f"{r['area_um2']:,.1f} µm² logic ({r['sequential_area_um2']:,.1f} µm² flip-flops)")
    top = sorted(r["area_by_type_um2"].items(), key=lambda kv: -kv[1])
    for name, area in top:
        print(f"  {name:<10} {r['cells_by_type'][name]:>8,}  {area:>12,.1f} µm²")
    print(f"logic depth: {r['logic_depth']} cells on the longest path between registers, "
          "memories and ports (area-mapped, no timing)")
    print(f"memories: {r['memory_bits']:,} bits in {len(r['memories'])} arrays, "
          f"{r['memory_area_um2']:,.1f} µm² as SRAM (6T bitcell / {r['sram_array_efficiency']:g})")
    print(f"at 16 nm (area × {r['area_scale_16nm']:.3f}): logic {r['logic_mm2_16nm']:.5f} mm², "
          f"total {r['area_mm2_16nm']:.5f} mm²")
    if r["estimator_area_um2"] is not None:
        print(f"estimator's model of the same unit: {r['estimator_area_um2']:,.1f} µm² logic "
              f"({r['estimator_over_netlist']:.2f}× the netlist)")
    return 0
