"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hwsim.errors import HwsimError
from hwsim.kernels import KERNELS, Kernel

__all__ = ["OutputPath", "add_kernel_parsers", "build_dir", "check_outputs", "kernel_params",
           "output_dir", "output_file", "print_json"]


def add_kernel_parsers(sub, help_fmt: str, setup) -> None:
    """One sub-parser per registered kernel, with ``--<param>`` options for its parameters."""
    for kernel in KERNELS.values():
        p = sub.add_parser(kernel.name, help=help_fmt.format(summary=kernel.summary),
                           description=f"{kernel.name}: {kernel.summary}.",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        for cp in kernel.cli_params:
            p.add_argument(f"--{cp.name.replace('_', '-')}", dest=cp.name, type=cp.type,
                           default=cp.default, help=cp.help)
        p.set_defaults(hwsim_kernel=kernel)  # not `kernel`: a kernel may have that option
        setup(p)


def kernel_params(args) -> tuple[Kernel, object]:
    from hwsim.limits import check_kernel_args

    kernel: Kernel = args.hwsim_kernel
    values = {cp.name: getattr(args, cp.name) for cp in kernel.cli_params}
    check_kernel_args(kernel, values, getattr(args, "force_limits", False),  # before building
                      getattr(args, "limits_flag", "--force"))
    return kernel, kernel.params(**values)


def print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v} is not positive")
    return v


#: the largest seed every generator of the project takes (numpy, torch, Python's random)
SEED_MAX = 2**32 - 1


def seed_int(text: str) -> int:
    """argparse ``type`` of a random seed: an integer 0 … :data:`SEED_MAX`."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= v <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"a seed must be 0 … {SEED_MAX}, not {v}")
    return v


def require(cond: bool, message: str) -> None:
    if not cond:
        raise HwsimError(message)


class OutputPath(type(Path())):
    """A path an option writes to; :func:`check_outputs` checks it before the command runs."""

    _hwsim_kind = "output folder"
    _hwsim_dir = True


def _output_type(kind: str, is_dir: bool):
    def convert(text: str) -> OutputPath:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"the {kind} must not be empty")
        p = OutputPath(text)
        p._hwsim_kind, p._hwsim_dir = kind, is_dir
        return p
    convert.__name__ = kind.replace(" ", "_")
    return convert


#: argparse ``type`` of an output folder, an output file, and a build folder
output_dir = _output_type("output folder", True)
output_file = _output_type("output file", False)
build_dir = _output_type("build folder", True)


def check_outputs(args) -> None:
    """Refuse, before any work, every output path of ``args`` that is a symbolic link, a file
    (or, for a file, a folder), a device, or cannot be written (:mod:`hwsim.files`)."""
    from hwsim.files import check_output_dir, check_output_file

    for value in vars(args).values():
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, OutputPath):
                (check_output_dir if v._hwsim_dir else check_output_file)(v, v._hwsim_kind)
