"""Number formats, quantizers, requantization and (later) ONNX export.

Importing ``quant`` needs only numpy: the torch-based quantizers and exporters live in
submodules that are imported explicitly.
"""

from .qtype import (
    INT8,
    INT32,
    UINT8,
    Overflow,
    QType,
    Rounding,
    dequantize,
    quantize,
    quantize_multiplier,
    requantize,
    round_shift,
)

__all__ = [
    "INT8",
    "INT32",
    "UINT8",
    "Overflow",
    "QType",
    "Rounding",
    "dequantize",
    "quantize",
    "quantize_multiplier",
    "requantize",
    "round_shift",
]
