"""The ``hwsim`` command. Thin: each subcommand parses arguments and calls library code.

Subcommands live one per module in this package and expose ``register(subparsers)``; a user
error (:class:`hwsim.errors.HwsimError`) becomes one line ``hwsim: error: …`` and exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from hwsim import __version__
from hwsim.errors import HwsimError

__all__ = ["build_parser", "main"]

# Command modules in the order `hwsim --help` lists them (the order of the flow).
_COMMANDS = ("rtl", "sim", "bench", "sweep", "run", "swiftchannel", "airfm")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="hwsim",
        description="Edge and hardware co-design simulator for attention: carries a "
                    "quantization-aware model down to bit-exact RTL and back up to latency, "
                    "energy and area figures.",
        epilog="Run `hwsim COMMAND --help` for the options of each command.",
    )
    parser.add_argument("--version", action="version", version=f"hwsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMANDS:
        importlib.import_module(f"hwsim.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except HwsimError as e:
        print(f"hwsim: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hwsim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
