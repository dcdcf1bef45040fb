"""Latency / energy / area / FPGA-resource estimator (``hwsim estimate``).

Architecture descriptions (:mod:`.arch`, YAML under ``arch/``), energy/area tables (:mod:`.tables`,
YAML under ``tables/``) and workloads (:mod:`.workload`; each operation's counts and cycles come
from its registered kernel's golden formulas, through :mod:`.kernels`) are kept apart; :mod:`.engine`
multiplies counts by tables and puts every op under a compute-versus-DRAM roofline.
See ``docs/estimate.md``.
"""

from .arch import Arch, known_targets, load_arch
from .estimate import Estimate, estimate, estimate_arch
from .tables import Tables, load_tables
from .workload import bitnet_workload, known_models, onnx_workload

__all__ = ["Arch", "Estimate", "Tables", "bitnet_workload", "estimate", "estimate_arch",
           "known_models", "known_targets", "load_arch", "load_tables", "onnx_workload"]
