"""Loader for DeepMIMO-style channel exports (``.npy`` / ``.npz`` / ``.mat``).

DeepMIMO (and tools that export like it) store the channel of each user as a complex array
``(users, rx_antennas, bs_antennas, subcarriers)``; MATLAB exports hold it in a ``.mat`` file
under a variable (DeepMIMO v2: ``channel``; some exports keep real and imaginary parts apart
as ``channel_real`` / ``channel_imag``). :func:`load_channels` reads either, checks it and
returns complex64 ``(users, rx, bs, subcarriers)`` (a 3-D array is read as one rx antenna).
No data ships with hwsim; tests write small files of this layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hwsim.errors import HwsimError

__all__ = ["load_channels"]

_KEYS = ("channel", "channels", "H", "h")


def _from_mapping(d, path: Path, key: str | None) -> np.ndarray:
    keys = [k for k in d if not k.startswith("__")]
    if key is not None:
        if key not in d:
            raise HwsimError(f"{path.name}: no variable {key!r} (has: {', '.join(keys)})")
        return np.asarray(d[key])
    for k in _KEYS:
        if k in d:
            return np.asarray(d[k])
        if f"{k}_real" in d and f"{k}_imag" in d:
            re, im = np.asarray(d[f"{k}_real"]), np.asarray(d[f"{k}_imag"])
            if re.shape != im.shape:
                raise HwsimError(f"{path.name}: {k}_real {re.shape} and {k}_imag {im.shape} "
                                 "differ in shape")
            return re + 1j * im
    raise HwsimError(f"{path.name}: no channel variable (looked for {', '.join(_KEYS)}; "
                     f"has: {', '.join(keys) or 'nothing'})")


def load_channels(path, key: str | None = None) -> np.ndarray:
    """Channels of a DeepMIMO-style export as complex64 ``(users, rx, bs, subcarriers)``."""
    path = Path(path)
    if not path.is_file():
        raise HwsimError(f"channel file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            H = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                H = _from_mapping(z, path, key)
        elif suffix == ".mat":
            from scipy.io import loadmat

            H = _from_mapping(loadmat(str(path)), path, key)
        else:
            raise HwsimError(f"{path.name}: channel files must be .npy, .npz or .mat")
    except HwsimError:
        raise
    except Exception as e:  # corrupt or foreign file: one clear line
        raise HwsimError(f"{path.name}: cannot read channels ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else 'no detail'})") from None
    if H.dtype == object or not np.issubdtype(H.dtype, np.number):
        raise HwsimError(f"{path.name}: channel array must be numeric, not {H.dtype}")
    if H.ndim == 3:
        H = H[:, None]
    if H.ndim != 4 or min(H.shape) < 1:
        raise HwsimError(f"{path.name}: channels must be (users, [rx,] bs, subcarriers), "
                         f"got shape {H.shape}")
    H = H.astype(np.complex64)
    if not np.all(np.isfinite(H)):
        raise HwsimError(f"{path.name}: channel array holds NaN or infinity")
    return H
