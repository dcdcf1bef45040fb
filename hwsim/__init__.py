"""hwsim: an edge and hardware co-design simulator for attention.

Packages: :mod:`hwsim.golden` (bit-exact integer kernels, the specification),
:mod:`hwsim.sim` (cocotb runners and testbenches), :mod:`hwsim.flow` (resumable flows),
:mod:`hwsim.cli` (the ``hwsim`` command). Importing ``hwsim`` is cheap: no torch, no Amaranth.
"""

from .errors import HwsimError, ToolMissingError

__version__ = "0.1.0"
__all__ = ["HwsimError", "ToolMissingError", "__version__"]
