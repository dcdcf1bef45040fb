"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hwsim.errors import HwsimError
from hwsim.kernels import KERNELS, Kernel

__all__ = ["add_kernel_parsers", "kernel_params", "output_dir", "output_file", "print_json"]


def add_kernel_parsers(sub, help_fmt: str, setup) -> None:
    """One sub-parser per registered kernel, with ``--<param>`` options for its parameters."""
    for kernel in KERNELS.values():
        p = sub.add_parser(kernel.name, help=help_fmt.format(summary=kernel.summary),
                           description=f"{kernel.name}: {kernel.summary}.",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        for cp in kernel.cli_params:
            p.add_argument(f"--{cp.name.replace('_', '-')}", dest=cp.name, type=cp.type,
                           default=cp.default, help=cp.help)
        p.set_defaults(kernel=kernel)
        setup(p)


def kernel_params(args) -> tuple[Kernel, object]:
    kernel: Kernel = args.kernel
    values = {cp.name: getattr(args, cp.name) for cp in kernel.cli_params}
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


def output_dir(text: str) -> Path:
    """argparse ``type`` of an output folder: refused at parse time, before any work, when it is
    a symbolic link, a file, a device or cannot be written (:func:`hwsim.files.check_output_dir`)."""
    from hwsim.files import check_output_dir

    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path is not an output "
                                         "folder")
    try:
        return check_output_dir(Path(text))
    except HwsimError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def output_file(text: str) -> Path:
    """argparse ``type`` of one output file (:func:`hwsim.files.check_output_file`)."""
    from hwsim.files import check_output_file

    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path is not an output "
                                         "file")
    try:
        return check_output_file(Path(text))
    except HwsimError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
