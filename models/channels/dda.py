"""Space–time–frequency ↔ angle–Doppler–delay (DDA) transform of MIMO-OFDM channels.

AirFM-DDA (arXiv 2605.00020, REFERENCE.md) moves CSI from the space–time–frequency domain
(antenna × OFDM frame × subcarrier) into angle × Doppler × delay with one FFT per axis:

* antenna → angle: DFT over the uniform linear array (a plane wave ``e^{jπ a sin θ}`` becomes a
  peak at spatial frequency ``sin θ / 2``), zero angle in the middle (``fftshift``);
* time → Doppler: DFT over the frames (``e^{j2π ν t}`` becomes a peak at ``ν``), zero Doppler in
  the middle;
* frequency → delay: inverse DFT over the subcarriers (``Σ α e^{−j2π f τ}`` becomes a peak at
  ``τ``), delay 0 first.

All three use ``norm="ortho"``, so the transform is unitary: energy (and so NMSE) is the same
in both domains and :func:`dda_to_stf` is its exact inverse (up to float rounding). The last
three axes of the array are (antenna, time, subcarrier); leading axes are batch axes.
Only numpy.
"""

from __future__ import annotations

import numpy as np

from hwsim.errors import HwsimError

__all__ = ["angle_delay", "angle_delay_inverse", "dda_to_stf", "stf_to_dda"]


def _check(H, what: str) -> np.ndarray:
    H = np.asarray(H)
    if H.ndim < 3:
        raise HwsimError(f"{what} needs (…, antennas, frames, subcarriers), got shape {H.shape}")
    if not np.iscomplexobj(H):
        H = H.astype(np.complex64)
    return H


def stf_to_dda(H) -> np.ndarray:
    """(…, A, T, F) space–time–frequency channel → (…, A, T, F) angle–Doppler–delay grid."""
    H = _check(H, "DDA transform")
    X = np.fft.fft(H, axis=-3, norm="ortho")
    X = np.fft.fft(X, axis=-2, norm="ortho")
    X = np.fft.ifft(X, axis=-1, norm="ortho")
    return np.fft.fftshift(X, axes=(-3, -2)).astype(H.dtype, copy=False)


def dda_to_stf(X) -> np.ndarray:
    """Inverse of :func:`stf_to_dda`: (…, A, T, F) DDA grid → space–time–frequency channel."""
    X = _check(X, "inverse DDA transform")
    H = np.fft.ifftshift(X, axes=(-3, -2))
    H = np.fft.fft(H, axis=-1, norm="ortho")
    H = np.fft.ifft(H, axis=-2, norm="ortho")
    H = np.fft.ifft(H, axis=-3, norm="ortho")
    return H.astype(X.dtype, copy=False)


def angle_delay(H) -> np.ndarray:
    """Angle and delay axes only (no Doppler): each frame of (…, A, T, F) on its own."""
    H = _check(H, "angle-delay transform")
    X = np.fft.ifft(np.fft.fft(H, axis=-3, norm="ortho"), axis=-1, norm="ortho")
    return np.fft.fftshift(X, axes=-3).astype(H.dtype, copy=False)


def angle_delay_inverse(X) -> np.ndarray:
    """Inverse of :func:`angle_delay`."""
    X = _check(X, "inverse angle-delay transform")
    H = np.fft.ifftshift(X, axes=-3)
    H = np.fft.ifft(np.fft.fft(H, axis=-1, norm="ortho"), axis=-3, norm="ortho")
    return H.astype(X.dtype, copy=False)
