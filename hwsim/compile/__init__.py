"""The ONNX compiler: an ONNX file (QONNX or QCDQ) is the hand-off from a quantized model to
hardware (docs/compile.md; a library so far, no command-line entry yet).

Stages, each a module of this package: the front end (:mod:`hwsim.compile.frontend`: check,
clean, recognise supported ops and patterns), the ``hwsim`` ONNX dialect
(:mod:`hwsim.compile.dialect`: one custom op per registry kernel, executed by the kernel's
golden function) and the lowering transformations (:mod:`hwsim.compile.lower`). qonnx
(``ModelWrapper``, its transformations, its custom-op registry, ``execute_onnx``) is the graph
engine; this package holds no graph IR of its own.
"""
