"""``hwsim eval MODEL``: evaluate a trained model (the same parsers as ``hwsim MODEL eval``)."""

from __future__ import annotations

import importlib

from .train import _OTHER_MODELS


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a trained model (tables and plots)",
                       description="Evaluate a trained model of hwsim's model zoo.")
    msub = p.add_subparsers(dest="model", metavar="MODEL", required=True)
    for model in _OTHER_MODELS:
        importlib.import_module(f"hwsim.cli.{model}").add_eval_parser(msub, model)
