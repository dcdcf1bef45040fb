"""The one error type users see.

Anything a user can get wrong (impossible parameters, malformed files, a design that does not
fit, a missing tool) raises :class:`HwsimError` with one line that names what is wrong; the
CLI prints it as ``hwsim: error: …`` and exits with status 2. Bugs stay ordinary exceptions.
"""

from __future__ import annotations

__all__ = ["HwsimError", "ToolMissingError", "check_ints"]


class HwsimError(ValueError):
    """A user-facing error: the message is one line naming what is wrong."""


class ToolMissingError(HwsimError):
    """An external tool (simulator, synthesizer) is not installed or not on PATH."""


def _int_range(lo: int, hi: int | None) -> str:
    if hi is not None:
        return f"an integer {lo} … {hi}"
    if lo == 1:
        return "a positive integer"
    if lo == 0:
        return "a non-negative integer"
    return f"an integer ≥ {lo}"


def check_ints(obj, kind: str, names, lo: int = 1, hi: int | None = None, *,
               types: type | tuple[type, ...] = int) -> None:
    """Check that each named attribute of ``obj`` is an integer (never a ``bool``) in
    ``lo … hi`` (``hi=None``: no upper bound); raise :class:`HwsimError` with one line
    ``"<kind> <name> must be a positive integer, not <value>"`` (or ``a non-negative integer``,
    ``an integer lo … hi``) naming the first that is not.

    An item of ``names`` is a field name, or a ``(name, lo, hi)`` triple with its own bounds.
    ``types``: the accepted integer types (e.g. ``(int, np.integer)``)."""
    for item in names:
        name, a, b = (item, lo, hi) if isinstance(item, str) else item
        v = getattr(obj, name)
        if (isinstance(v, bool) or not isinstance(v, types) or v < a
                or (b is not None and v > b)):
            raise HwsimError(f"{kind} {name} must be {_int_range(a, b)}, not {v!r}")
