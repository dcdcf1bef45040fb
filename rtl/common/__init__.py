"""Datapath building blocks shared by hwsim's RTL components (Amaranth expressions)."""

from .arith import (
    adder_tree,
    comb_signal,
    max_tree,
    norm_shift,
    round_shift,
    round_shift_parts,
    saturate,
    shift_add_multiply,
    shift_add_partials,
)

__all__ = ["adder_tree", "comb_signal", "max_tree", "norm_shift", "round_shift",
           "round_shift_parts", "saturate", "shift_add_multiply", "shift_add_partials"]
