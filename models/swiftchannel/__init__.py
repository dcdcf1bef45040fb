"""SwiftChannel (arXiv 2605.01931): CNN channel estimation with parameter-free attention.

``model`` (float student/teacher, Conv3XC re-parameterization), ``train`` (data sets, training,
evaluation), ``qat`` (Brevitas int8 model and its integer parameters), ``pipeline`` (the
train / eval flows the CLI and the benchmark call).
"""
