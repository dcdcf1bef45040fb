"""Part capacity table and the fit check."""

import itertools

import pytest

from fpga.parts import PARTS, check_fit, get_part, utilization
from hwsim.errors import HwsimError


@pytest.mark.parametrize("name", ["xczu28dr", "xczu48dr", "xczu49dr"])
def test_rfsoc_parts_have_ultrascale_plus_resources(name):
    part = get_part(name)
    assert part.family == "xcup"
    assert part.name.startswith(name + "-")
    assert set(part.capacity) == {"luts", "ffs", "dsp48e2", "bram36", "uram"}
    assert all(v > 0 for v in part.capacity.values())
    assert "DS889" in part.source


@pytest.mark.parametrize("name", ["lfe5u-12f", "lfe5u-25f", "lfe5u-45f", "lfe5u-85f"])
def test_ecp5_parts_have_lattice_resources(name):
    part = get_part(name)
    assert part.family == "ecp5"
    assert set(part.capacity) == {"luts", "ffs", "dsp", "bram"}
    assert "FPGA-DS-02012" in part.source


def test_ecp5_sizes_grow():
    caps = [PARTS[f"lfe5u-{s}f"].capacity for s in ("12", "25", "45", "85")]
    for small, big in itertools.pairwise(caps):
        assert all(small[k] <= big[k] for k in small)


def test_unknown_part_is_one_clear_line():
    with pytest.raises(HwsimError, match=r"unknown FPGA part 'xc7z020'; known: .*xczu28dr"):
        get_part("xc7z020")


def test_fit_passes_at_capacity_and_fails_one_over():
    part = get_part("lfe5u-25f")
    check_fit(dict(part.capacity), part, "exactly full")
    over = {**part.capacity, "bram": part.capacity["bram"] + 1, "luts": part.capacity["luts"] + 5}
    with pytest.raises(HwsimError) as e:
        check_fit(over, part, "my-design")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("my-design does not fit LFE5U-25F-6BG381C: needs ")
    assert "LUT 24,293 > 24,288" in msg and "EBR (18 Kb) 57 > 56" in msg
    assert "FF" not in msg  # only the resources that do not fit are named


def test_fit_counts_half_bram36():
    part = get_part("xczu28dr")
    with pytest.raises(HwsimError, match=r"BRAM36 1,080.5 > 1,080"):
        check_fit({"bram36": 1080.5}, part, "d")


def test_utilization_fractions():
    part = get_part("xczu48dr")
    u = utilization({"luts": 42_528, "dsp48e2": 0}, part)
    assert u["luts"] == {"used": 42_528, "available": 425_280, "fraction": 0.1}
    assert u["uram"]["used"] == 0 and set(u) == set(part.capacity)
