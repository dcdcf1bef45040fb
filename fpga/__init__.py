"""FPGA platforms and build flows (see ``docs/fpga.md``).

* :mod:`fpga.parts` — part capacities (datasheet figures, sourced) and the fit check;
* :mod:`fpga.platforms` — Amaranth platforms (ZCU111, RFSoC 4x2, XCZU49DR, ULX3S) and targets;
* :mod:`fpga.harness` — the board top level that keeps an accelerator's streams on chip;
* :mod:`fpga.build` — plan → synthesis → (place-and-route → bitstream) → report, cached;
* :mod:`fpga.yosys` — YoWASP tool runners and UltraScale+ resource counts.
"""
