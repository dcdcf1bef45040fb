"""Shared pieces of the kernels' manifest entries (``docs/rtl-interface.md``).

Every kernel's ``manifest(params)`` states ``numeric`` (what each output code is), ``latency``
and ``interval``. The timing entries are built here from the golden module's own formula
functions, so a number is never written twice and no formula is restated: :func:`timing` calls
the function and records its dotted name and the value.
"""

from __future__ import annotations

from collections.abc import Callable

from hwsim.golden.vitallm.layer_codes import MULT_BITS
from hwsim.golden.vitallm.ternary_mvu import I2S_CODE

__all__ = ["I2S_WEIGHTS", "NORM_QUANT", "RESIDUAL", "STATIC", "interval", "latency",
           "one_at_a_time", "port", "residual_mult", "timing"]

#: the ternary weight words every MVU-based kernel takes (:mod:`hwsim.golden.vitallm.ternary_mvu`)
I2S_WEIGHTS = {"map": {str(w): c for w, c in I2S_CODE.items()}, "width": 2,
               "unused": "code 3 is read as weight 0",
               "word": "beat r*(cols/lanes)+k holds W[r, k*lanes:(k+1)*lanes], lane 0 in bits "
                       "[0, 2) (hwsim.golden.vitallm.ternary_mvu.weight_words)"}

#: how long a static side port is held
STATIC = "static: held from a unit's first input beat to its last output beat"


def timing(fn: Callable, *args, meaning: str, **extra) -> dict:
    """``{"function", "cycles", "meaning"}``: ``cycles`` is ``fn(*args)``, the golden module's
    formula evaluated for these parameters; ``function`` names it."""
    value = fn(*args)
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{fn.__module__}.{fn.__qualname__} gave {value!r}, not a cycle count")
    return {"function": f"{fn.__module__}.{fn.__qualname__}",
            "cycles": int(value), "meaning": meaning, **extra}


def latency(fn: Callable, *args, unit: str = "token", first: str = "input beat",
            last: str = "output beat") -> dict:
    """A latency entry: one ``unit`` from its first ``first`` to its last ``last``."""
    return timing(fn, *args,
                  meaning=f"first accepted {first} to last {last} of one {unit}, both counted "
                          "(no idle input, no back-pressure)")


def interval(fn: Callable, *args, unit: str = "token") -> dict:
    """An initiation interval the golden module states: ``unit`` after ``unit``, back to back."""
    return timing(fn, *args, back_to_back=True,
                  meaning=f"cycles between the first input beats of back-to-back {unit}s (no "
                          "idle input, no back-pressure)")


def one_at_a_time(lat: dict, unit: str = "token", overlap: str = "") -> dict:
    """The interval of a kernel whose back-to-back overlap no golden formula states: a host
    that sends each ``unit`` after the previous one's last output beat starts one every
    ``latency`` cycles. ``overlap`` says what the RTL takes early (from its docstring)."""
    meaning = (f"one {unit} at a time: each {unit}'s first input beat in the cycle after the "
               f"previous {unit}'s last output beat gives a period of the latency (the "
               f"simulations check the latency of one {unit}, not this period)")
    if overlap:
        meaning += f" (the RTL may take the next {unit} earlier: {overlap}; no golden formula " \
                   "states that shorter period)"
    return {**{k: lat[k] for k in ("function", "cycles")},
            "meaning": meaning, "back_to_back": False}


def on_off(text: str) -> bool:
    """A :class:`hwsim.kernels.CliParam` type of a yes/no parameter: ``1``/``true``/``yes``/``on``
    or ``0``/``false``/``no``/``off`` (any case)."""
    v = str(text).strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{text!r} is not one of 1/0, true/false, yes/no, on/off")


def port(name: str, width: int, meaning: str, *, signed: bool = False, **extra) -> dict:
    """A numeric parameter carried on a port: its name, width, signedness and meaning."""
    return {"port": name, "width": width, "signed": signed, "meaning": meaning, **extra}


#: the norm unit (``norm-quant``) as the composite kernels use it, in words
NORM_QUANT = ("row peak -> shift to NORM_IN_BITS bits (half even, hwsim.golden.vitallm.layer_codes."
              "shift_rows); eps = eps_code(E, shift, amax, power) (E / (amax**power * "
              "4**shift) rounded half up, capped at EPS_CAP); rmsnorm_int -> NORM_OUT codes; "
              "act_quant: amax = max |y|, a = sat8(round_half_even(y * r * 127 * 2**-k)), "
              "(r, k) = reciprocal(amax)")

#: the residual add after a ternary projection (:func:`hwsim.golden.vitallm.layer_codes.residual_add`)
RESIDUAL = ("y = x + sat(round_half_even(acc * amax * M * 2**-S)) in res_width signed bits; "
            "acc = sum_j W[r, j] * a[j] exact; the add is exact (one bit wider)")


def residual_mult(port: str, what: str) -> dict:
    """The ``{m, s}`` port of a residual requantizer."""
    return {"port": port, "layout": {"m": f"unsigned {MULT_BITS} bits, low", "s": "unsigned 6 bits"},
            "meaning": f"{what}'s residual requantization M (m) and S (s); {STATIC}"}
