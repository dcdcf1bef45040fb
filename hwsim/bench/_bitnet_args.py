"""Options the benchmarks on BitNet-tiny checkpoints share (``hwsim bench bitnet``,
``hwsim bench vitallm``); each bench passes its own defaults. Not a benchmark itself (the
leading ``_`` keeps it out of the registry)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["add_checkpoint_arguments"]


def add_checkpoint_arguments(p, *, steps: int, windows: int, windows_for: str,
                             trained: str = "when missing", calib_windows: int = 8,
                             threads: int = 1, rtl_layer: int = 0) -> None:
    """Add ``--checkpoints``, ``--steps``, ``--windows``, ``--calib-windows``, ``--threads``,
    ``--rtl-layer`` and ``--out`` to ``p``. ``windows_for``: what the validation windows are
    used for (help text); ``trained``: when the checkpoints are trained here (help text)."""
    p.add_argument("--checkpoints", type=Path, default=Path("build/bitnet/tiny"),
                   help="folder with fp/ and ternary/ from `hwsim train bitnet` (trained here "
                        f"{trained})")
    p.add_argument("--steps", type=int, default=steps, help="training steps if training is needed")
    p.add_argument("--windows", type=int, default=windows,
                   help=f"validation windows of 128 bytes for {windows_for}")
    p.add_argument("--calib-windows", type=int, default=calib_windows,
                   help="training windows that calibrate the integer model's static scales")
    p.add_argument("--threads", type=int, default=threads,
                   help="CPU threads of torch (and of numpy's BLAS where speed is compared)")
    p.add_argument("--rtl-layer", type=int, default=rtl_layer, help="decoder layer for --rtl")
    p.add_argument("--out", type=Path, default=None, help="keep the RTL builds here")
