"""Uplink SRS channel-estimation data from Sionna's 3GPP TR 38.901 CDL models, and its baselines.

The data follow SwiftChannel (arXiv 2605.01931, section "Data"; REFERENCE.md): CDL-B, 30 ns
delay spread, 28 GHz, 120 kHz subcarrier spacing (numerology 3), a uniform linear BS array of
``bs_ant`` antennas (half-wavelength spacing, 38.901 element pattern) and ``ue_ant`` omni UE
antennas, uplink, SRS on one OFDM symbol. The channel coefficients come from
:class:`sionna.phy.channel.tr38901.CDL` (its own TR 38.901 tables) and are turned into the
frequency response with :func:`sionna.phy.channel.cir_to_ofdm_channel`, normalized to unit mean
power per resource element.

Layout (one sample): the full channel ``H`` is complex ``(F, U·A)`` — ``F`` subcarriers, column
``u·A + a`` for UE antenna ``u`` and BS antenna ``a``. The network sees the low-resolution LS
estimate ``Y`` of shape ``(F/4, U·A/4)``: pilots on subcarriers ``4i`` and BS antennas ``4m``
(frequency and spatial compression 4, as in the paper's (108, 32) input for 432 × 128).
Assumptions (not published in this form): the comb-2 SRS of both UE ports shares one comb and is
separated by cyclic shift, and the low-resolution grid keeps every second comb-2 pilot; the LS
estimate at a pilot is ``H + n`` with ``n ~ CN(0, 1/SNR)`` (unit-power pilots). With one SRS
symbol the UE speed enters only through Sionna's Doppler phase at ``t = 0``, i.e. not at all; it
is still drawn from the paper's ranges so the generator is the paper's.

Import cost: only numpy here; Sionna (and torch) are imported inside :func:`generate_channels`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim.errors import HwsimError

__all__ = [
    "DEFAULT",
    "PAPER",
    "TEST_SNRS_DB",
    "TRAIN_SNRS_DB",
    "TRAIN_SPEEDS_KMH",
    "Geometry",
    "Lmmse",
    "generate_channels",
    "ls_interpolate",
    "ls_observation",
    "nmse",
    "nmse_db",
    "pack_real",
    "unpack_real",
]

#: SwiftChannel's training SNRs (dB) and UE speeds (km/h); test: 6 … 30 dB, 5 … 120 km/h.
TRAIN_SNRS_DB = (5.0, 10.0, 15.0, 20.0)
TRAIN_SPEEDS_KMH = (5.0, 15.0, 30.0, 45.0, 60.0)
TEST_SNRS_DB = tuple(float(s) for s in range(6, 31, 4))
TEST_SPEED_RANGE_KMH = (5.0, 120.0)


@dataclass(frozen=True)
class Geometry:
    """Antennas, subcarriers and radio parameters of one channel-estimation problem.

    Parameters
    ----------
    bs_ant, ue_ant : int
        BS receive antennas (a uniform linear array) and UE transmit antennas.
    subcarriers : int
        Subcarriers of the full grid (the paper: 36 RBs × 12 = 432).
    freq_comp, space_comp : int
        Pilot spacing in frequency and in BS antennas (the paper: 4 and 4); they must divide
        ``subcarriers`` and ``bs_ant``.
    spacing_hz, carrier_hz, delay_spread_s : float
        120 kHz, 28 GHz, 30 ns in the paper.
    cdl_model : str
        TR 38.901 CDL profile letter ("B" in the paper).
    """

    bs_ant: int = 16
    ue_ant: int = 2
    subcarriers: int = 96
    freq_comp: int = 4
    space_comp: int = 4
    spacing_hz: float = 120e3
    carrier_hz: float = 28e9
    delay_spread_s: float = 30e-9
    cdl_model: str = "B"

    def __post_init__(self):
        for name in ("bs_ant", "ue_ant", "subcarriers", "freq_comp", "space_comp"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise HwsimError(f"channel geometry {name} must be a positive integer, not {v!r}")
        if self.subcarriers % self.freq_comp:
            raise HwsimError(f"freq_comp ({self.freq_comp}) must divide subcarriers "
                             f"({self.subcarriers})")
        if self.bs_ant % self.space_comp:
            raise HwsimError(f"space_comp ({self.space_comp}) must divide bs_ant ({self.bs_ant})")
        if self.cdl_model not in ("A", "B", "C", "D", "E"):
            raise HwsimError(f"CDL model must be one of A … E, not {self.cdl_model!r}")
        for name in ("spacing_hz", "carrier_hz", "delay_spread_s"):
            if not getattr(self, name) > 0:
                raise HwsimError(f"channel geometry {name} must be positive")

    @property
    def full_shape(self) -> tuple[int, int]:
        """(subcarriers, columns) of the full channel."""
        return self.subcarriers, self.ue_ant * self.bs_ant

    @property
    def low_shape(self) -> tuple[int, int]:
        """(subcarriers, columns) of the low-resolution LS input."""
        return self.subcarriers // self.freq_comp, self.ue_ant * self.bs_ant // self.space_comp

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, d: dict) -> Geometry:
        try:
            return cls(**d)
        except TypeError as e:
            raise HwsimError(f"not a channel geometry: {d!r} ({e})") from None


#: CPU-friendly default: 16 × 2 antennas, 96 subcarriers (8 RBs), every BS antenna observed:
#: input (24, 32), output (96, 32). Why not the paper's spatial compression 4 here: with CDL-B's
#: angular spread a ULA sampled every 4th antenna (2 λ apart) aliases, and even the LMMSE gains
#: only ≈ 2 dB over LS (`hwsim swiftchannel eval` on a run with ``--space-comp 4`` shows it).
DEFAULT = Geometry(space_comp=1)
#: The paper's geometry: 64 × 2 antennas, 432 subcarriers: input (108, 32), output (432, 128).
PAPER = Geometry(bs_ant=64, ue_ant=2, subcarriers=432)


def generate_channels(geom: Geometry, n: int, speed_kmh: tuple[float, float] = (5.0, 60.0),
                      seed: int = 0, chunk: int = 256) -> np.ndarray:
    """``n`` frequency responses ``(n, F, U·A)`` complex64 from Sionna's CDL model.

    UE speeds are drawn uniformly from ``speed_kmh`` per sample by Sionna.
    """
    if n < 1:
        raise HwsimError(f"number of channel samples must be positive, not {n}")
    lo, hi = speed_kmh
    if not 0 <= lo <= hi:
        raise HwsimError(f"speed range must satisfy 0 ≤ min ≤ max, not {speed_kmh}")
    import torch
    from sionna.phy import config
    from sionna.phy.channel import cir_to_ofdm_channel, subcarrier_frequencies
    from sionna.phy.channel.tr38901 import CDL, PanelArray

    config.seed = int(seed)
    fc = geom.carrier_hz
    bs = PanelArray(num_rows_per_panel=1, num_cols_per_panel=geom.bs_ant, polarization="single",
                    polarization_type="V", antenna_pattern="38.901", carrier_frequency=fc,
                    device="cpu")
    ut = PanelArray(num_rows_per_panel=1, num_cols_per_panel=geom.ue_ant, polarization="single",
                    polarization_type="V", antenna_pattern="omni", carrier_frequency=fc,
                    device="cpu")
    cdl = CDL(geom.cdl_model, geom.delay_spread_s, fc, ut, bs, "uplink",
              min_speed=lo / 3.6, max_speed=hi / 3.6, device="cpu")
    freqs = subcarrier_frequencies(geom.subcarriers, geom.spacing_hz, device="cpu")
    out = np.empty((n, *geom.full_shape), dtype=np.complex64)
    with torch.no_grad():
        for start in range(0, n, chunk):
            b = min(chunk, n - start)
            a, tau = cdl(batch_size=b, num_time_steps=1, sampling_frequency=1.0)
            h = cir_to_ofdm_channel(freqs, a, tau, normalize=True)  # (b,1,A,1,U,1,F)
            h = h[:, 0, :, 0, :, 0, :].permute(0, 3, 2, 1)  # (b, F, U, A)
            out[start:start + b] = h.reshape(b, geom.subcarriers, -1).numpy()
    return out


def _check_full(H, geom: Geometry) -> np.ndarray:
    H = np.asarray(H)
    if H.ndim != 3 or H.shape[1:] != geom.full_shape:
        raise HwsimError(f"channels of shape {H.shape} do not fit geometry (n, "
                         f"{geom.full_shape[0]}, {geom.full_shape[1]})")
    return H


def pilot_grid(geom: Geometry, H) -> np.ndarray:
    """The noiseless channel at the pilots: ``(n, F/fc, U·A/sc)``."""
    H = _check_full(H, geom)
    n, F, _ = H.shape
    H4 = H.reshape(n, F, geom.ue_ant, geom.bs_ant)
    return H4[:, ::geom.freq_comp, :, ::geom.space_comp].reshape(n, F // geom.freq_comp, -1)


def ls_observation(H, geom: Geometry, snr_db, rng: np.random.Generator) -> np.ndarray:
    """LS estimates at the pilots: ``H_p + n``, ``n ~ CN(0, 10**(-snr/10))``.

    ``snr_db`` is a scalar or one value per sample.
    """
    Hp = pilot_grid(geom, H)
    snr = np.asarray(snr_db, dtype=np.float64)
    if snr.ndim > 1 or (snr.ndim == 1 and snr.shape[0] != Hp.shape[0]):
        raise HwsimError(f"SNR must be a scalar or one value per sample, got shape {snr.shape}")
    sigma = np.sqrt(10.0 ** (-snr / 10.0) / 2.0).reshape(-1, 1, 1)
    noise = rng.standard_normal(Hp.shape) + 1j * rng.standard_normal(Hp.shape)
    return (Hp + sigma * noise).astype(np.complex64)


def ls_interpolate(Y, geom: Geometry, extrapolate: bool = False) -> np.ndarray:
    """The LS baseline: linear interpolation of the pilot estimates to the full grid.

    Separable: along frequency (pilot subcarriers ``fc·i``), then along the BS array (pilot
    antennas ``sc·m``) for each UE antenna. Beyond the last pilot the edge value is held
    (hwsim's baseline, the stronger one here), or with ``extrapolate`` continued along the line
    through the last two pilots — the rule of Sionna's ``LSChannelEstimator`` with
    ``interpolation_type="lin"`` (its ``LinearInterpolator`` takes the first or last pair of
    pilots outside their span; one pilot is held either way).
    """
    Y = np.asarray(Y)
    Fl, Cl = geom.low_shape
    if Y.ndim != 3 or Y.shape[1:] != (Fl, Cl):
        raise HwsimError(f"LS input of shape {Y.shape} does not fit geometry (n, {Fl}, {Cl})")
    n = Y.shape[0]
    fgrid = np.arange(geom.subcarriers)
    fp = np.arange(Fl) * geom.freq_comp
    agrid = np.arange(geom.bs_ant)
    ap = np.arange(geom.bs_ant // geom.space_comp) * geom.space_comp
    Wf = _interp_matrix(fgrid, fp, extrapolate)  # (F, Fl)
    Wa = _interp_matrix(agrid, ap, extrapolate)  # (A, Al)
    Y4 = Y.reshape(n, Fl, geom.ue_ant, -1)
    out = np.einsum("fi,niuj,aj->nfua", Wf, Y4, Wa)
    return out.reshape(n, geom.subcarriers, -1).astype(np.complex64)


def _interp_matrix(grid: np.ndarray, points: np.ndarray, extrapolate: bool = False) -> np.ndarray:
    """Matrix ``W`` with ``W @ v`` = numpy.interp(grid, points, v) for any ``v`` (edge values
    held), or with ``extrapolate`` the line through the two nearest edge points outside
    ``points``' span."""
    eye = np.eye(len(points))
    W = np.stack([np.interp(grid, points, eye[k]) for k in range(len(points))], axis=1)
    if extrapolate and len(points) >= 2:
        for outside, a, b in ((grid < points[0], 0, 1), (grid > points[-1], -2, -1)):
            t = (grid[outside] - points[a]) / (points[b] - points[a])
            W[outside] = 0.0
            W[outside, a] = 1.0 - t
            W[outside, b] = t
    return W


class Lmmse:
    """Linear MMSE estimate of the full channel from the pilot LS estimates.

    ``Ĥ = R_hp (R_pp + σ² I)⁻¹ y`` per UE antenna, with the channel covariance estimated from
    training channels (sample covariance over the samples and the UE antennas). The pilots of
    one UE antenna form one observation vector of ``F/fc · A/sc`` entries; its target is that UE
    antenna's ``F · A`` channel.
    """

    def __init__(self, geom: Geometry, H_train):
        H = _check_full(H_train, geom)
        self.geom = geom
        n, F, _ = H.shape
        A, U = geom.bs_ant, geom.ue_ant
        vec = H.reshape(n, F, U, A).transpose(0, 2, 1, 3).reshape(n * U, F * A).astype(np.complex128)
        mask = np.zeros((F, A), dtype=bool)
        mask[::geom.freq_comp, ::geom.space_comp] = True
        self._pidx = np.flatnonzero(mask.ravel())
        P = vec[:, self._pidx]
        self.R_hp = vec.T @ P.conj() / vec.shape[0]  # (F·A, Np)
        self.R_pp = P.T @ P.conj() / P.shape[0]      # (Np, Np)

    @classmethod
    def from_file(cls, path: Path, geom: Geometry) -> Lmmse:
        """The covariances a run folder saved (``R_hp``, ``R_pp``, ``pidx`` in an ``.npz``),
        checked against ``geom``: the pilot indices it implies, the shapes they give, complex
        and finite values."""
        from hwsim.loading import read_npz

        z = read_npz(path, {"R_hp": "complex", "R_pp": "complex", "pidx": "int"},
                     "LMMSE covariance file")
        mask = np.zeros((geom.subcarriers, geom.bs_ant), dtype=bool)
        mask[::geom.freq_comp, ::geom.space_comp] = True
        pidx = np.flatnonzero(mask.ravel())
        n, p = mask.size, len(pidx)
        if not np.array_equal(z["pidx"], pidx):
            raise HwsimError(f"{path}: pidx does not hold the {p} pilot positions of the run's "
                             "geometry")
        for k, want in (("R_hp", (n, p)), ("R_pp", (p, p))):
            if z[k].shape != want:
                raise HwsimError(f"{path}: array {k!r} has shape {z[k].shape}, the geometry "
                                 f"needs {want}")
        lm = cls.__new__(cls)
        lm.geom, lm.R_hp, lm.R_pp, lm._pidx = geom, z["R_hp"], z["R_pp"], pidx
        return lm

    def estimate(self, Y, snr_db: float) -> np.ndarray:
        g = self.geom
        Y = np.asarray(Y)
        Fl, Cl = g.low_shape
        if Y.ndim != 3 or Y.shape[1:] != (Fl, Cl):
            raise HwsimError(f"LMMSE input of shape {Y.shape} does not fit geometry (n, {Fl}, {Cl})")
        n = Y.shape[0]
        y = Y.reshape(n, Fl, g.ue_ant, -1).transpose(0, 2, 1, 3).reshape(n * g.ue_ant, -1)
        sigma2 = 10.0 ** (-float(snr_db) / 10.0)
        W = np.linalg.solve((self.R_pp + sigma2 * np.eye(len(self._pidx))).T, self.R_hp.T).T
        h = y.astype(np.complex128) @ W.T  # (n·U, F·A)
        h = h.reshape(n, g.ue_ant, g.subcarriers, g.bs_ant).transpose(0, 2, 1, 3)
        return h.reshape(n, g.subcarriers, -1).astype(np.complex64)


def nmse(H, H_hat) -> np.ndarray:
    """Per-sample NMSE ``‖H − Ĥ‖² / ‖H‖²`` (linear), shape (n,)."""
    H, H_hat = np.asarray(H), np.asarray(H_hat)
    if H.shape != H_hat.shape:
        raise HwsimError(f"NMSE needs equal shapes, got {H.shape} and {H_hat.shape}")
    axes = tuple(range(1, H.ndim))
    err = np.sum(np.abs(H - H_hat) ** 2, axis=axes, dtype=np.float64)
    ref = np.sum(np.abs(H) ** 2, axis=axes, dtype=np.float64)
    return err / ref


def nmse_db(H, H_hat) -> float:
    """The paper's metric: mean per-sample NMSE, in dB."""
    return float(10.0 * np.log10(np.mean(nmse(H, H_hat))))


def pack_real(Hc) -> np.ndarray:
    """Complex ``(n, R, C)`` → real ``(n, 2, R, C)`` float32 (re, im channels)."""
    Hc = np.asarray(Hc)
    return np.stack([Hc.real, Hc.imag], axis=1).astype(np.float32)


def unpack_real(Hr) -> np.ndarray:
    """Real ``(n, 2, R, C)`` → complex ``(n, R, C)``."""
    Hr = np.asarray(Hr)
    if Hr.ndim != 4 or Hr.shape[1] != 2:
        raise HwsimError(f"expected (n, 2, rows, cols) re/im data, got shape {Hr.shape}")
    return (Hr[:, 0] + 1j * Hr[:, 1]).astype(np.complex64)
