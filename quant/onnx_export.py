"""ONNX export of Brevitas models (QONNX and QCDQ), checked and executed.

Both formats go through ``onnx.checker`` before anything else reads them; QONNX graphs run in
``qonnx.core.onnx_exec.execute_onnx`` (after shape inference), QCDQ graphs in onnxruntime.
Export settings that work with torch 2.13 + Brevitas 0.13.4: the TorchScript exporter
(``dynamo=False``) at opset 13, batch fixed by the example input (ENVIRONMENT.md).
Imports torch, Brevitas and onnx: import this module explicitly (``quant`` itself stays numpy).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hwsim.errors import HwsimError

__all__ = ["export_qcdq", "export_qonnx", "run_qcdq", "run_qonnx"]


def _checked(path: Path):
    import onnx

    model = onnx.load(str(path))
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        raise HwsimError(f"exported ONNX {path.name} fails onnx.checker: {str(e).splitlines()[0]}") \
            from None
    return model


def export_qonnx(module, example, path: Path) -> Path:
    """QONNX (``Quant`` nodes with scale, zero point, bit width) of ``module`` at ``example``."""
    from brevitas.export import export_qonnx as _export

    path = Path(path)
    _export(module, input_t=example, export_path=str(path), dynamo=False, opset_version=13)
    _checked(path)
    return path


def export_qcdq(module, example, path: Path) -> Path:
    """QCDQ (QuantizeLinear / Clip / DequantizeLinear) of ``module`` at ``example``."""
    from brevitas.export import export_onnx_qcdq as _export

    path = Path(path)
    _export(module, args=example, export_path=str(path), dynamo=False, opset_version=13)
    _checked(path)
    return path


def run_qonnx(path: Path, x: np.ndarray) -> np.ndarray:
    """Execute a QONNX graph with qonnx's executor; returns the first output."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    mw = ModelWrapper(_checked(Path(path))).transform(InferShapes())
    out = execute_onnx(mw, {mw.graph.input[0].name: np.asarray(x, np.float32)})
    return np.asarray(out[mw.graph.output[0].name])


def run_qcdq(path: Path, x: np.ndarray) -> np.ndarray:
    """Execute a QCDQ graph in onnxruntime (CPU); returns the first output."""
    import onnxruntime as ort

    _checked(Path(path))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: np.asarray(x, np.float32)})[0]
