"""``IntRotary``: rotary position embedding on int8 codes (kernel ``rope``).

``codes (…, T, H·hd) → codes (…, T, H·hd)``, int8 to int8, token-major (the stream order: a
token's ``heads`` heads of ``head_dim`` codes one after the other; the positions ``0 … T−1``
along the second-last axis). For token ``t``, each head and ``i < h = head_dim/2``:
``a_i = x_i·C[t,i] − x_{i+h}·S[t,i]``, ``a_{i+h} = x_{i+h}·C[t,i] + x_i·S[t,i]``,
``y = sat_int8(round_half_even(a · mult · 2**-shift))``. Attributes: ``heads``, ``head_dim``,
``frac`` (fractional bits of the tables), ``mult``, ``shift``, ``cos`` and ``sin`` (the
``T × h`` integer table codes, row-major, ``|code| ≤ 2**frac``), ``real_factor`` (input scale /
output scale, informative: ``mult · 2**(frac − shift)`` approximates it). Golden:
:func:`hwsim.golden.common.rope.rope`.
"""

from __future__ import annotations

import numpy as np

from hwsim.compile.dialect import _ParamsOp
from hwsim.errors import HwsimError
from hwsim.golden.common import rope as golden

__all__ = ["IntRotary"]


class IntRotary(_ParamsOp):
    """Rotary embedding on int8 codes (see the module docstring)."""

    KERNEL = "rope"
    OUT_TYPE = "INT8"

    def get_nodeattr_types(self):
        return {**super().get_nodeattr_types(),
                "heads": ("i", True, 1),
                "head_dim": ("i", True, 2),
                "frac": ("i", False, 14),
                "mult": ("i", True, 1),
                "shift": ("i", True, 1),
                "cos": ("ints", True, []),
                "sin": ("ints", True, []),
                "real_factor": ("f", False, 0.0)}

    def params(self) -> golden.RopeParams:
        """The kernel's parameters (raises :class:`HwsimError` on bad attributes)."""
        g = self.get_nodeattr
        hd, cos, sin = g("head_dim"), list(g("cos")), list(g("sin"))
        h = max(hd // 2, 1)
        if not cos or len(cos) % h or len(sin) != len(cos):
            raise HwsimError(f"IntRotary cos/sin must both hold tokens × head_dim/2 = k × {h} "
                             f"codes, not {len(cos)} and {len(sin)}")
        T = len(cos) // h
        return golden.RopeParams(head_dim=hd, heads=g("heads"), tokens=T, frac=g("frac"),
                                 mult=g("mult"), shift=g("shift"),
                                 cos=np.reshape(cos, (T, h)), sin=np.reshape(sin, (T, h)))

    def execute_node(self, context, graph):
        node = self.onnx_node
        x = np.asarray(context[node.input[0]])
        if x.dtype != np.int8:
            raise HwsimError(f"IntRotary {node.name!r}: int8 codes expected, not {x.dtype}")
        context[node.output[0]] = golden.rope(x, self.params()).astype(np.int8)
