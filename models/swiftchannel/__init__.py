"""SwiftChannel (arXiv 2605.01931): CNN channel estimation with parameter-free attention.

``model`` (float student/teacher, Conv3XC re-parameterization), ``train`` (data sets, training,
evaluation), ``qat`` (int8 QAT: Brevitas scales, integer forward; its integer parameters),
``onnx_int`` (the integer ONNX graphs), ``pipeline`` (the train / eval flows the CLI and the
benchmark call), ``ablation`` (where the int8 model loses NMSE: ``hwsim swiftchannel ablate``).
"""
