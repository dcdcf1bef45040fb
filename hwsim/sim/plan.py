"""Test plans: how the host hands stimulus to a cocotb testbench and gets results back.

The host writes ``plan.json`` (kernel parameters, cases) and one ``.npz`` of integer arrays per
case into the build folder; the testbench, running inside the simulator, reads them through the
``HWSIM_PLAN`` environment variable, checks the RTL against the golden function and writes
``result.json`` beside the plan. Parameters are dataclasses whose QType fields serialize through
:meth:`quant.qtype.QType.to_dict`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from quant.qtype import QType

__all__ = ["decode_params", "encode_params", "load_plan", "write_plan", "write_result"]


def encode_params(params) -> dict:
    out = {}
    for f in dataclasses.fields(params):
        v = getattr(params, f.name)
        out[f.name] = {"qtype": v.to_dict()} if isinstance(v, QType) else v
    return out


def decode_params(cls, d: dict):
    kwargs = {k: QType.from_dict(v["qtype"]) if isinstance(v, dict) and "qtype" in v else v
              for k, v in d.items()}
    return cls(**kwargs)


def write_plan(folder: Path, kernel: str, params, cases: list[dict]) -> Path:
    """Write the plan of ``cases`` (dicts with ``name``, ``arrays`` and optional ``idle``,
    ``stall``, ``seed``) for ``kernel`` at ``params`` into ``folder``; drop a stale result.
    Returns the path of ``plan.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").unlink(missing_ok=True)
    plan_cases = []
    for i, case in enumerate(cases):
        data = f"case{i}.npz"
        np.savez(folder / data, **{k: np.asarray(v) for k, v in case["arrays"].items()})
        plan_cases.append({"name": case["name"], "data": data, "idle": case.get("idle", 0.0),
                           "stall": case.get("stall", 0.0), "seed": case.get("seed", i)})
    path = folder / "plan.json"
    path.write_text(json.dumps({"kernel": kernel, "params": encode_params(params),
                                "cases": plan_cases}, indent=1))
    return path


def load_plan() -> tuple[dict, Path]:
    """The plan of the current cocotb run and its folder (from ``HWSIM_PLAN``)."""
    path = Path(os.environ["HWSIM_PLAN"])
    return json.loads(path.read_text()), path.parent


def load_case(folder: Path, case: dict) -> dict[str, np.ndarray]:
    with np.load(folder / case["data"], allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def write_result(folder: Path, result: dict) -> None:
    tmp = folder / "result.json.tmp"
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(folder / "result.json")
