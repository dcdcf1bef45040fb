"""The one error type users see.

Anything a user can get wrong (impossible parameters, malformed files, a design that does not
fit, a missing tool) raises :class:`HwsimError` with one line that names what is wrong; the
CLI prints it as ``hwsim: error: …`` and exits with status 2. Bugs stay ordinary exceptions.
"""

from __future__ import annotations

__all__ = ["HwsimError", "ToolMissingError"]


class HwsimError(ValueError):
    """A user-facing error: the message is one line naming what is wrong."""


class ToolMissingError(HwsimError):
    """An external tool (simulator, synthesizer) is not installed or not on PATH."""
