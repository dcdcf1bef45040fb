"""The ONNX compiler behind ``hwsim compile``: an ONNX file (QONNX or QCDQ) is the hand-off
from a quantized model to verified hardware (docs/compile.md, docs/compile-internals.md).

Stages: the front end (:mod:`hwsim.compile.frontend`: check, clean, recognise supported ops
and patterns), the ``hwsim`` ONNX dialect (:mod:`hwsim.compile.dialect`: one custom op per
registry kernel, executed by the kernel's golden function), the lowering transformations
(:mod:`hwsim.compile.lower`), the dataflow back end (:mod:`hwsim.compile.backend`, RTL in
:mod:`rtl.dataflow`) and the resumable command (:mod:`hwsim.compile.driver`, reports in
:mod:`hwsim.compile.report`); :mod:`hwsim.compile.examples` holds example models. qonnx
(``ModelWrapper``, its transformations, its custom-op registry, ``execute_onnx``) is the graph
engine; this package holds no graph IR of its own.
"""
