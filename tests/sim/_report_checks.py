"""Checks on a :class:`hwsim.sim.runner.SimReport` shared by the per-kernel cocotb tests."""

from __future__ import annotations


def assert_exact_with_stalls(report) -> None:
    """Every case bit-exact, every timed case on the formula, and both timed (no idle, no
    stall) and untimed (idle input, output stalls) cases present."""
    assert report.passed, report.failures
    assert any(c["timed"] for c in report.cases) and any(not c["timed"] for c in report.cases)
    for c in report.cases:
        assert c["bit_exact"], c
        assert c["cycles_match"] or not c["timed"], c


def assert_only_cycles_fail(report) -> list[dict]:
    """The report of an RTL one cycle late: every code right, every timed case off the
    formula, every failure a cycle failure. Returns the timed cases."""
    assert not report.passed
    assert all(c["bit_exact"] for c in report.cases)
    timed = [c for c in report.cases if c["timed"]]
    assert timed and not any(c["cycles_match"] for c in timed)
    assert all("formula says" in f for f in report.failures)
    return timed
