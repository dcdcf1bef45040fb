"""`hwsim synth asic`: a kernel's RTL mapped by Yosys onto the NanGate45 cell description."""

import json

import pytest

from hwsim.cli import main
from hwsim.estimate import netlist as nl
from hwsim.estimate.tables import load_tables
from hwsim.golden.vitallm import ternary_mvu as tm
from hwsim.kernels import get_kernel


def test_cell_description_and_liberty():
    cells = nl.load_cells()
    c = cells["cells"]
    # LEF widths × the 1.4 µm row: the flip-flop is the one the area table already cites
    assert c["DFF_X1"]["area_um2"] == pytest.approx(4.522)
    assert load_tables("asic_horowitz45").raw("area.dff_bit") * 1e12 == pytest.approx(4.522)
    assert c["NAND2_X1"]["area_um2"] == pytest.approx(0.798)
    lib = nl.liberty(cells)
    for name, cell in c.items():
        assert f"cell ({name})" in lib and f"area : {cell['area_um2']} ;" in lib
    assert lib.count("ff (IQ, IQN)") == 1


@pytest.mark.synth
def test_ternary_mvu_area_from_its_netlist():
    k = get_kernel("ternary-mvu")
    small, tall = (k.params(lanes=4, rows=r, cols=16) for r in (8, 16))
    a, b = nl.asic_area(k, small), nl.asic_area(k, tall)
    cells = nl.load_cells()["cells"]
    for r in (a, b):
        # the area is the sum of its cells; every flip-flop is one DFF_X1
        assert r["area_um2"] == pytest.approx(
            sum(n * cells[t]["area_um2"] for t, n in r["cells_by_type"].items()), rel=1e-6)
        assert r["sequential_area_um2"] == pytest.approx(
            r["cells_by_type"]["DFF_X1"] * cells["DFF_X1"]["area_um2"])
        assert r["area_mm2_16nm"] == pytest.approx(
            (r["area_um2"] + r["memory_area_um2"]) * r["area_scale_16nm"] / 1e6)
    # memories kept apart: exactly the RTL's weight and activation memories
    assert a["memory_bits"] == tm.storage_bits(small) and b["memory_bits"] == tm.storage_bits(tall)
    assert {m["name"] for m in a["memories"]} == {"wmem", "xmem"}
    # twice the rows: the same datapath (one row counter bit more), twice the weight memory
    assert b["memory_bits"] > a["memory_bits"]
    assert abs(b["area_um2"] - a["area_um2"]) < 0.1 * a["area_um2"]
    # the estimator's own model of the unit, beside it
    assert a["estimator_over_netlist"] == pytest.approx(a["estimator_area_um2"] / a["area_um2"])
    deep = nl.asic_area(k, k.params(lanes=4, rows=8, cols=16, pipeline="deep"))
    assert deep["estimator_area_um2"] is None and deep["area_um2"] > a["area_um2"]
    # the deep pipeline's registers shorten the longest cell path between flip-flops
    assert 0 < deep["logic_depth"] < a["logic_depth"]


@pytest.mark.synth
def test_cli_json_and_bad_input(capsys):
    assert main(["synth", "asic", "eltwise", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["kernel"] == "eltwise" and r["cells"] > 0 and r["area_mm2_16nm"] > 0
    # every priced kernel has the estimator's inventory beside its netlist
    assert r["estimator_over_netlist"] == pytest.approx(r["estimator_area_um2"] / r["area_um2"])
    assert main(["synth", "asic", "ternary-mvu", "--lanes", "3", "--cols", "16"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hwsim: error:") and "must divide cols" in err and "\n" not in err


@pytest.mark.synth
def test_table_adders_and_multipliers_are_the_cell_flow():
    """asic_horowitz45's adder and multiplier areas are what this flow builds for them."""
    from hwsim.estimate.asic_calibration import unit_rows

    rows = unit_rows()
    assert {r["unit"] for r in rows} == set(nl.UNITS)
    assert all(r["equal"] for r in rows), rows


@pytest.mark.synth
def test_mvu_inventories_follow_their_rtl():
    """The matrix–vector units' estimator inventory (``area.mvu_inventory``) against their
    netlists at held-out configurations: every flip-flop counted, cell area within ±20 %."""
    from hwsim.estimate.asic_calibration import TOLERANCE, kernel_rows

    rows = kernel_rows((("ternary-mvu", {"lanes": 4, "rows": 16, "cols": 32, "mult_bits": 12}),
                        ("int8-mvu", {"lanes": 2, "rows": 4, "cols": 8, "mult_bits": 10,
                                      "bias": True})))
    for r in rows:
        assert r["model"] == "rtl datapath" and r["ffs_est"] == r["ffs_rtl"], r
        assert abs(r["ratio"] - 1) <= TOLERANCE and r["within"], r
