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

from ._common import check_outputs

__all__ = ["HwsimArgumentParser", "build_parser", "main"]

# `hwsim --help` lists commands in the order of the flow; modules not named here follow.
_ORDER = ("train", "eval", "export", "events", "snn", "swiftchannel", "airfm", "compile", "rtl", "sim",
          "estimate", "fpga", "synth", "bench", "sweep", "run")


def _commands() -> list[str]:
    import pkgutil

    names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    return sorted(names, key=lambda n: (_ORDER.index(n) if n in _ORDER else len(_ORDER), n))


class _StrictOnOff(argparse.BooleanOptionalAction):
    """``--x`` / ``--no-x`` that refuses both forms (or one twice with opposite meanings) in
    one command line instead of letting the last one win."""

    def __call__(self, parser, namespace, values, option_string=None):
        seen = getattr(namespace, "_onoff_seen", None) or {}
        if self.dest in seen and seen[self.dest] != option_string:
            parser.error(f"{seen[self.dest]} and {option_string} contradict each other")
        seen[self.dest] = option_string
        namespace._onoff_seen = seen
        super().__call__(parser, namespace, values, option_string)


class HwsimArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line ``hwsim: error: …`` and exit status 2,
    like every other user error (the usage is printed by ``--help`` only). Subcommand parsers
    inherit the class; ``--x/--no-x`` options refuse both forms at once; an integer ``--seed``
    must be 0 … 2**32 − 1 (what numpy and torch accept)."""

    def add_argument(self, *args, **kwargs):
        if kwargs.get("action") is argparse.BooleanOptionalAction:
            kwargs["action"] = _StrictOnOff
        return super().add_argument(*args, **kwargs)

    def error(self, message: str):
        where = self.prog.removeprefix("hwsim").strip()
        text = " ".join(str(message).split())  # argparse's messages may wrap
        self.exit(2, f"hwsim: error: {where + ': ' if where else ''}{text}\n")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = HwsimArgumentParser(
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
    _seeds(parser)
    return parser


def _seeds(parser: argparse.ArgumentParser) -> None:
    """Every integer ``--seed`` of the tree takes 0 … 2**32 − 1 (numpy and torch refuse others
    with a traceback)."""
    from ._common import seed_int

    for action in parser._actions:
        if "--seed" in action.option_strings and action.type is int:
            action.type = seed_int
        if isinstance(action, argparse._SubParsersAction):
            for p in action.choices.values():
                _seeds(p)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.__dict__.pop("_onoff_seen", None)
    previous = _on_sigterm(_terminate)
    try:
        check_outputs(args)  # output folders and files: before any work
        return int(args.func(args) or 0)
    except HwsimError as e:
        print(f"hwsim: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hwsim: interrupted", file=sys.stderr)
        return 130
    except _Terminated:
        print("hwsim: terminated", file=sys.stderr)
        return 143
    finally:
        _on_sigterm(previous)


class _Terminated(BaseException):
    """SIGTERM as an exception: the command unwinds (staged outputs removed, tool processes
    ended) instead of dying where it stands. Not an ``Exception``, so that no ``except
    Exception`` on the way swallows it."""


def _terminate(signum, frame):
    raise _Terminated


def _on_sigterm(handler):
    """Install ``handler`` for SIGTERM and return the previous one (None where signals cannot
    be set: outside the main thread)."""
    import signal
    import threading

    if handler is None or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handler)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
