"""Channel prediction in the DDA domain: past frames in, future frames out (numpy only).

A channel sample ``H`` (A, P + Q, F) from :mod:`models.channels.timevarying` is split into
``P`` past frames and ``Q`` future frames. The network input is the angle–Doppler–delay grid of
the past frames, :func:`models.channels.dda.stf_to_dda` of (A, P, F); its target is the
angle–delay grid of each future frame (:func:`models.channels.dda.angle_delay`). Both
transforms are unitary, so NMSE in the angle–delay domain equals NMSE of ``H`` itself.

Baselines on the space–time–frequency channel: last value (``Ĥ_{P+k} = H_{P−1}``) and linear
extrapolation (``Ĥ_{P+k} = H_{P−1} + (k+1)(H_{P−1} − H_{P−2})``).

Channel estimation (:func:`estimation_split`): every frame carries pilots on every
``pilot_spacing``-th subcarrier of every antenna, observed as ``H + n`` with
``n ~ CN(0, 10^(−SNR/10))`` (:func:`models.channels.ls_observation`, unit-power pilots); the LS
estimate of a frame is their linear interpolation over frequency
(:func:`models.channels.ls_interpolate`). The network sees the DDA grid of the LS estimates of
``P`` frames and outputs the current (last) frame; baselines are LS and the per-frame LMMSE of
:class:`models.channels.Lmmse` with the covariance of the training channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError
from models.channels import Geometry, ls_interpolate, ls_observation, nmse
from models.channels.dda import angle_delay, angle_delay_inverse, stf_to_dda

__all__ = ["PredictionSet", "last_value", "linear_extrapolation", "nmse_db_of", "split"]


@dataclass
class PredictionSet:
    """Inputs ``X`` (n, 2P, A, F) float32 (re/im of each Doppler bin) and targets ``Y``
    (n, 2Q, A, F) float32 (re/im of each future frame's angle–delay grid), plus the raw ``H``."""

    X: np.ndarray
    Y: np.ndarray
    H: np.ndarray
    past: int
    ls: np.ndarray | None = None      # estimation: LS estimates (n, A, P, F)
    pilots: np.ndarray | None = None  # estimation: pilot observations of frame P−1 (n, F/s, A)

    @property
    def future(self) -> int:
        return self.H.shape[2] - self.past

    def target(self) -> np.ndarray:
        """The channel frames the net outputs: the future frames, or (estimation) the last."""
        return self.H[:, :, -1:] if self.ls is not None else self.H[:, :, self.past:]


def _to_real(Z: np.ndarray) -> np.ndarray:
    """(n, A, T, F) complex → (n, 2T, A, F) real: re of all T, then im of all T."""
    Z = np.transpose(Z, (0, 2, 1, 3))
    return np.concatenate([Z.real, Z.imag], axis=1).astype(np.float32)


def from_real(R: np.ndarray) -> np.ndarray:
    """Inverse of the real packing: (n, 2T, A, F) → (n, A, T, F) complex64."""
    R = np.asarray(R)
    if R.ndim != 4 or R.shape[1] % 2:
        raise HwsimError(f"expected (n, 2T, A, F) re/im data, got shape {R.shape}")
    T = R.shape[1] // 2
    Z = R[:, :T] + 1j * R[:, T:]
    return np.transpose(Z, (0, 2, 1, 3)).astype(np.complex64)


def split(H, past: int) -> PredictionSet:
    """The prediction task on channels ``H`` (n, A, T, F): ``past`` frames in, the rest out."""
    H = np.asarray(H)
    if H.ndim != 4:
        raise HwsimError(f"channels must be (n, antennas, frames, subcarriers), got {H.shape}")
    if not 2 <= past < H.shape[2]:
        raise HwsimError(f"past frames must be 2 … {H.shape[2] - 1} for {H.shape[2]} frames, "
                         f"not {past}")
    X = _to_real(stf_to_dda(H[:, :, :past]))
    Y = _to_real(angle_delay(H[:, :, past:]))
    return PredictionSet(X, Y, H, past)


def to_stf(Y_pred: np.ndarray) -> np.ndarray:
    """Network output (n, 2Q, A, F) → predicted future channels (n, A, Q, F)."""
    return angle_delay_inverse(from_real(Y_pred))


def last_value(H, past: int) -> np.ndarray:
    H = np.asarray(H)
    Q = H.shape[2] - past
    return np.repeat(H[:, :, past - 1:past], Q, axis=2)


def linear_extrapolation(H, past: int) -> np.ndarray:
    H = np.asarray(H)
    Q = H.shape[2] - past
    d = H[:, :, past - 1] - H[:, :, past - 2]
    k = np.arange(1, Q + 1).reshape(1, 1, Q, 1)
    return H[:, :, past - 1:past] + k * d[:, :, None]


def nmse_db_of(H_true, H_pred) -> float:
    """Mean per-sample NMSE in dB over the future frames."""
    return float(10 * np.log10(np.mean(nmse(H_true, H_pred))))


def pilot_geometry(antennas: int, subcarriers: int, pilot_spacing: int) -> Geometry:
    """One frame as a :class:`models.channels.Geometry`: (F, A), pilots every ``pilot_spacing``."""
    return Geometry(bs_ant=antennas, ue_ant=1, subcarriers=subcarriers, freq_comp=pilot_spacing,
                    space_comp=1)


def frames_to_rows(H: np.ndarray) -> np.ndarray:
    """(n, A, T, F) → (n·T, F, A): one Geometry sample per frame."""
    n, A, T, F = H.shape
    return np.transpose(H, (0, 2, 3, 1)).reshape(n * T, F, A)


def rows_to_frames(R: np.ndarray, n: int, T: int) -> np.ndarray:
    _, F, A = R.shape
    return np.transpose(R.reshape(n, T, F, A), (0, 3, 1, 2))


def estimation_split(H, snr_db, pilot_spacing: int, rng: np.random.Generator) -> PredictionSet:
    """Channel estimation on ``H`` (n, A, P, F): noisy pilots of all ``P`` frames in, frame
    ``P−1`` out. ``snr_db``: a scalar or one value per sample."""
    H = np.asarray(H)
    if H.ndim != 4:
        raise HwsimError(f"channels must be (n, antennas, frames, subcarriers), got {H.shape}")
    n, A, P, F = H.shape
    geom = pilot_geometry(A, F, pilot_spacing)
    snr = np.broadcast_to(np.asarray(snr_db, dtype=np.float64), (n,))
    Y = ls_observation(frames_to_rows(H), geom, np.repeat(snr, P), rng)
    LS = rows_to_frames(ls_interpolate(Y, geom), n, P)
    X = _to_real(stf_to_dda(LS))
    T = _to_real(angle_delay(H[:, :, -1:]))
    return PredictionSet(X, T, H, P, ls=LS, pilots=Y.reshape(n, P, *Y.shape[1:])[:, -1])
