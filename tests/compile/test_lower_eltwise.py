"""Lowering element-wise adds and multiplies (residuals, gates) of Brevitas models exported to
QONNX and QCDQ: one ``IntEltwise`` (kernel ``eltwise``) each, deviations within the bound the
step proves."""

import numpy as np
import onnx
import pytest
import torch
from brevitas import nn as qnn
from brevitas.quant import (
    Int8ActPerTensorFloat,
    Int8WeightPerTensorFloat,
    ShiftedUint8ActPerTensorFloat,
    Uint8ActPerTensorFloat,
)
from qonnx.custom_op.registry import getCustomOp

from hwsim.compile import frontend
from hwsim.compile.dialect import DOMAIN
from hwsim.compile.lower import (
    LowerElementwise,
    LowerLinearLayers,
    QuantActivationsToCodes,
    WeightQuantToCodes,
    lower,
)
from hwsim.errors import HwsimError
from hwsim.golden.common.eltwise import EltwiseParams
from hwsim.kernels import KERNELS
from quant.onnx import export_brevitas, run_qonnx


class _Residual(torch.nn.Module):
    """Two residual blocks: ``h = QuantReLU(L1(x) + x)``, ``y = Q(L2(h) + h)``; the skip
    tensors ``x`` and ``h`` also feed the linear layers, and the second add reads the first's
    output (twice: through ``L2`` and directly)."""

    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat)
        self.l1 = qnn.QuantLinear(16, 16, bias=True, weight_quant=Int8WeightPerTensorFloat,
                                  output_quant=Int8ActPerTensorFloat)
        self.q1 = qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat)
        self.l2 = qnn.QuantLinear(16, 16, bias=True, weight_quant=Int8WeightPerTensorFloat,
                                  output_quant=Int8ActPerTensorFloat)
        self.out = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat)

    def forward(self, x):
        x = self.inp(x)
        h = self.q1(self.l1(x) + x)
        return self.out(self.l2(h) + h)


class _Gate(torch.nn.Module):
    """A gate ``Q(L1(x) · L2(x))``: int8 values times shifted-uint8 (zero point ≠ 0) gates."""

    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat)
        self.l1 = qnn.QuantLinear(16, 16, bias=True, weight_quant=Int8WeightPerTensorFloat,
                                  output_quant=Int8ActPerTensorFloat)
        self.l2 = qnn.QuantLinear(16, 16, bias=True, weight_quant=Int8WeightPerTensorFloat,
                                  output_quant=ShiftedUint8ActPerTensorFloat)
        self.out = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat)

    def forward(self, x):
        x = self.inp(x)
        return self.out(self.l1(x) * self.l2(x))


MODELS = {"residual": (_Residual, 2), "gate": (_Gate, 1)}


def _export(cls, path, fmt):
    torch.manual_seed(0)
    model = cls()
    model.train()
    with torch.no_grad():  # calibrate the activation scales
        for _ in range(8):
            model(torch.randn(64, 16) * 2)
    model.eval()
    return export_brevitas(model, torch.randn(4, 16), path, fmt)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eltwise")
    return {(name, fmt): _export(cls, folder / f"{name}_{fmt}.onnx", fmt)
            for name, (cls, _) in MODELS.items() for fmt in ("qonnx", "qcdq")}


def _samples(graph, n=4, seed=1):
    """Seeded inputs named as ``graph`` (a loaded graph or a file) names its input."""
    if not hasattr(graph, "graph"):
        graph = onnx.load(graph)
    name = graph.graph.input[0].name
    rng = np.random.default_rng(seed)
    return [{name: (rng.standard_normal((4, 16)) * 2).astype(np.float32)} for _ in range(n)]


@pytest.mark.parametrize("fmt", ["qonnx", "qcdq"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_adds_and_muls_lower_to_int_eltwise_within_the_bound(exports, name, fmt, tmp_path):
    path = exports[(name, fmt)]
    graph = frontend.load(path)  # renames the input: the file's own name runs the file
    inputs = _samples(graph)
    lowered, report = lower(graph, verify_inputs=inputs)

    assert {(n.domain or "", n.op_type) for n in lowered.graph.node} <= {
        ("", "QuantizeLinear"), ("", "DequantizeLinear"), (DOMAIN, "IntMatMul"),
        (DOMAIN, "Requant"), (DOMAIN, "IntEltwise")}
    elts = [n for n in lowered.graph.node if n.op_type == "IntEltwise"]
    assert len(elts) == MODELS[name][1]
    assert {getCustomOp(n).get_nodeattr("kernel") for n in elts} == {"eltwise"} <= set(KERNELS)
    ops = {getCustomOp(n).get_nodeattr("op") for n in elts}
    assert ops == ({"add"} if name == "residual" else {"mul"})
    for n in elts:
        p = getCustomOp(n).params()  # a valid kernel parameter set
        assert isinstance(p, EltwiseParams)
    if name == "residual":  # the first add is followed by the QuantReLU: relu, uint8 out
        first = getCustomOp(elts[0])
        assert first.get_nodeattr("relu") == 1 and first.get_nodeattr("out_signed") == 0
    else:  # the shifted-uint8 gate carries its zero point
        assert getCustomOp(elts[0]).params().b_zero != 0 \
            or getCustomOp(elts[0]).params().a_zero != 0

    step = report.step("LowerElementwise")
    assert not step.exact and step.name == "LowerElementwise"
    produced = {n.output[0] for n in elts}
    assert produced <= set(step.bound_lsb) and set(step.max_lsb) == set(step.bound_lsb)
    assert all(step.max_lsb[t] <= step.bound_lsb[t] for t in step.max_lsb)
    if name == "residual":  # the second block's linear layer reads the first add's codes
        downstream = [n.output[0] for n in lowered.graph.node if n.op_type == "Requant"
                      and n.input[0] == "/l2/Gemm/acc"]
        assert downstream and downstream[0] in step.bound_lsb
    print(name, fmt, "deviation (LSB):", step.max_lsb, "bounds:", step.bound_lsb)

    # the saved file passes the full check and, run in qonnx, gives the original QONNX
    # graph's output codes within the final node's bound, summed over the two steps
    saved = tmp_path / "lowered.onnx"
    onnx.save(lowered.model, saved)
    onnx.checker.check_model(onnx.load(saved), full_check=True)
    final = lowered.graph.node[-1]
    out_scale = lowered.get_initializer(final.input[1])
    bound = sum(s.bound_lsb.get(final.input[0], 0) for s in report.steps)
    for x, x_file in zip(inputs, _samples(path), strict=True):
        (want,) = run_qonnx(path, x_file)
        (got,) = run_qonnx(saved, x)
        assert np.any(want != 0)
        assert np.max(np.abs(np.round(want / out_scale) - np.round(got / out_scale))) <= bound


def _coarse(mult_bits, step_cls=LowerElementwise):
    return [QuantActivationsToCodes(), WeightQuantToCodes(), LowerLinearLayers(),
            step_cls(mult_bits=mult_bits)]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_coarse_multipliers_deviate_measurably_and_stay_within_the_bound(exports, name):
    """With 4-bit multipliers the folding error is large enough to change codes: the
    report measures it, and the proven bound still holds."""
    graph = frontend.load(exports[(name, "qonnx")])
    _, report = lower(graph, steps=_coarse(4), verify_inputs=_samples(graph, 6))
    step = report.step("LowerElementwise")
    assert max(step.max_lsb.values()) >= 1
    assert all(step.max_lsb[t] <= step.bound_lsb[t] for t in step.max_lsb)


class _ZeroBound(LowerElementwise):
    """The element-wise step claiming a bound of 0 LSB."""

    def apply(self, model):
        model, changed = super().apply(model)
        self.bounds = dict.fromkeys(self.bounds, 0)
        return model, changed


def test_a_deviation_above_the_claimed_bound_raises(exports):
    graph = frontend.load(exports[("residual", "qonnx")])
    with pytest.raises(HwsimError, match=r"_ZeroBound: .* deviates by [1-9][0-9]* LSB, above its "
                                         r"bound 0"):
        lower(graph, steps=_coarse(4, _ZeroBound), verify_inputs=_samples(graph))


def test_verify_inputs_must_name_the_graph_inputs(exports):
    path = exports[("gate", "qonnx")]
    with pytest.raises(HwsimError, match="verify inputs name"):
        lower(frontend.load(path), verify_inputs=[{"no_such_input": np.zeros((4, 16))}])


class _FloatAdd(torch.nn.Module):
    """An add whose result is not quantized: the full lowering names the node."""

    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat)
        self.l1 = qnn.QuantLinear(16, 16, bias=True, weight_quant=Int8WeightPerTensorFloat,
                                  output_quant=Int8ActPerTensorFloat)

    def forward(self, x):
        x = self.inp(x)
        return self.l1(x) + x


def test_an_add_without_an_output_quantizer_names_the_node(tmp_path):
    graph = frontend.load(_export(_FloatAdd, tmp_path / "float_add.onnx", "qonnx"))
    with pytest.raises(HwsimError, match=r"cannot lower Add node '[^']+': no hwsim dialect op"):
        lower(graph, verify_inputs=_samples(graph, 1))
