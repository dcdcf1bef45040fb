"""The two stages together: a Brevitas MLP exported to QONNX and to QCDQ goes through the front
end (check, clean, QCDQ → QONNX) and lowers to the same dialect graph, verified per step."""

import numpy as np
import pytest
import torch
from qonnx.custom_op.registry import getCustomOp

from hwsim.compile import frontend
from hwsim.compile.dialect import DOMAIN
from hwsim.compile.lower import STEPS, lower
from hwsim.kernels import KERNELS
from quant.onnx import export_brevitas
from tests.compile.test_lower import _MLP


@pytest.fixture(scope="module")
def mlp_model():
    torch.manual_seed(0)
    model = _MLP()
    model.train()
    with torch.no_grad():  # calibrate the activation scales
        for _ in range(8):
            model(torch.randn(64, 16) * 2)
    return model.eval()


@pytest.mark.parametrize("fmt", ["qonnx", "qcdq"])
def test_both_export_formats_load_and_lower(mlp_model, fmt, tmp_path):
    path = tmp_path / f"mlp_{fmt}.onnx"
    export_brevitas(mlp_model, torch.randn(4, 16), path, fmt)
    graph = frontend.load(path)
    assert frontend.unsupported(graph) == []

    name = graph.graph.input[0].name
    rng = np.random.default_rng(1)
    inputs = [{name: (rng.standard_normal((4, 16)) * 2).astype(np.float32)} for _ in range(4)]
    lowered, report = lower(graph, verify_inputs=inputs)

    assert [(n.domain, n.op_type) for n in lowered.graph.node] == \
        [("", "QuantizeLinear")] + [(DOMAIN, "IntMatMul"), (DOMAIN, "Requant")] * 3 \
        + [("", "DequantizeLinear")]
    assert [(s.name, s.exact) for s in report.steps] == [(c.__name__, c.exact) for c in STEPS]
    assert all(s.equal for s in report.steps if s.exact)
    approx = report.step("LowerLinearLayers")
    assert len(approx.max_lsb) == 3
    assert all(approx.max_lsb[t] <= approx.bound_lsb[t] for t in approx.max_lsb)
    # every matrix product names the registry kernel that builds it (with its Requant) in RTL
    kernels = {getCustomOp(n).get_nodeattr("kernel") for n in lowered.graph.node
               if n.op_type == "IntMatMul"}
    assert kernels == {"int8-mvu"} and "int8-mvu" in KERNELS
