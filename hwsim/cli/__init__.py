"""The ``hwsim`` command. Thin: each subcommand parses arguments and calls library code.

Subcommands live one per module in this package and expose ``register(subparsers)``; a module
registers by existing (``_``-prefixed modules are helpers). A user error
(:class:`hwsim.errors.HwsimError`) becomes one line ``hwsim: error: …`` and exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from hwsim import __version__
from hwsim.errors import HwsimError

__all__ = ["build_parser", "main"]

# `hwsim --help` lists commands in the order of the flow; modules not named here follow.
_ORDER = ("train", "eval", "export", "events", "snn", "swiftchannel", "airfm", "rtl", "sim",
          "estimate", "fpga", "bench", "sweep", "run")


def _commands() -> list[str]:
    import pkgutil

    names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    return sorted(names, key=lambda n: (_ORDER.index(n) if n in _ORDER else len(_ORDER), n))


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
    for name in _commands():
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
