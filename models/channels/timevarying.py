"""Time-varying MIMO-OFDM channels from Sionna's TR 38.901 CDL and TDL models.

One sample is the uplink frequency response ``H`` of shape ``(A, T, F)``: ``A`` BS antennas of a
uniform linear array (half-wavelength spacing; 38.901 element pattern for CDL), ``T`` channel
snapshots one frame period apart (Sionna's sum-of-sinusoids Doppler evolution at the UE speed)
and ``F`` subcarriers ``spacing_hz`` apart, from one omni UE antenna. The path gains and delays
come from :class:`sionna.phy.channel.tr38901.CDL` / ``TDL`` (their own TR 38.901 tables; TDL has
no angles, its ``A`` antennas are uncorrelated), the response from
:func:`sionna.phy.channel.cir_to_ofdm_channel` normalized to unit mean power per resource
element and frame.

Assumptions (not published by AirFM-DDA): the frequency grid is a sub-sampled band (by default
32 samples 720 kHz apart, i.e. one per two resource blocks at 30 kHz SCS: 23 MHz observed, a
delay bin of 43 ns, an unambiguous delay of 1.39 µs; longer delays alias, which the paper lists
among its robustness cases), and one frame is one 30 kHz slot (0.5 ms).

Import cost: only numpy here; Sionna (and torch) are imported inside :func:`generate`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError

__all__ = ["PROFILES", "ChannelSpec", "generate", "parse_profiles"]

#: the TR 38.901 link-level profiles Sionna implements
PROFILES = tuple(f"{k}-{x}" for k in ("CDL", "TDL") for x in "ABCDE")


@dataclass(frozen=True)
class ChannelSpec:
    """Grid and radio parameters of one time-varying channel set.

    Parameters
    ----------
    profile : str
        ``"CDL-A"`` … ``"CDL-E"`` or ``"TDL-A"`` … ``"TDL-E"``.
    speed_kmh : float
        UE speed (every sample of the set moves at this speed, in a random direction).
    delay_spread_s : float
        RMS delay spread the profile's normalized delays are scaled to.
    antennas, frames, subcarriers : int
        ``A``, ``T``, ``F`` of one sample.
    spacing_hz, carrier_hz, frame_s : float
        Subcarrier-sample spacing, carrier frequency, time between frames.
    """

    profile: str = "CDL-A"
    speed_kmh: float = 30.0
    delay_spread_s: float = 100e-9
    antennas: int = 8
    frames: int = 10
    subcarriers: int = 32
    spacing_hz: float = 720e3
    carrier_hz: float = 3.5e9
    frame_s: float = 0.5e-3

    def __post_init__(self):
        if self.profile not in PROFILES:
            raise HwsimError(f"channel profile must be one of {', '.join(PROFILES)}, "
                             f"not {self.profile!r}")
        for name in ("antennas", "frames", "subcarriers"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise HwsimError(f"channel {name} must be a positive integer, not {v!r}")
        if not (isinstance(self.speed_kmh, int | float) and 0 <= self.speed_kmh <= 1000):
            raise HwsimError(f"UE speed must be 0 … 1000 km/h, not {self.speed_kmh!r}")
        for name in ("delay_spread_s", "spacing_hz", "carrier_hz", "frame_s"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and np.isfinite(v) and v > 0):
                raise HwsimError(f"channel {name} must be a positive number, not {v!r}")

    @property
    def max_doppler_hz(self) -> float:
        return self.speed_kmh / 3.6 * self.carrier_hz / 299_792_458.0

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def parse_profiles(text: str) -> list[str]:
    """``"CDL-A,CDL-B"`` → list, each checked (``HwsimError`` naming a bad one)."""
    names = [t.strip().upper() for t in str(text).split(",") if t.strip()]
    if not names:
        raise HwsimError("no channel profile given (e.g. CDL-A,CDL-B)")
    for n in names:
        if n not in PROFILES:
            raise HwsimError(f"unknown channel profile {n!r} (one of {', '.join(PROFILES)})")
    return names


def generate(spec: ChannelSpec, n: int, seed: int = 0, chunk: int = 128) -> np.ndarray:
    """``n`` channels ``(n, A, T, F)`` complex64 from Sionna's TR 38.901 model of ``spec``."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise HwsimError(f"number of channel samples must be a positive integer, not {n!r}")
    import torch
    from sionna.phy import config
    from sionna.phy.channel import cir_to_ofdm_channel, subcarrier_frequencies
    from sionna.phy.channel.tr38901 import CDL, TDL, PanelArray

    config.seed = int(seed)
    kind, letter = spec.profile.split("-")
    v = spec.speed_kmh / 3.6
    fc = spec.carrier_hz
    if kind == "CDL":
        bs = PanelArray(num_rows_per_panel=1, num_cols_per_panel=spec.antennas,
                        polarization="single", polarization_type="V", antenna_pattern="38.901",
                        carrier_frequency=fc, device="cpu")
        ut = PanelArray(num_rows_per_panel=1, num_cols_per_panel=1, polarization="single",
                        polarization_type="V", antenna_pattern="omni", carrier_frequency=fc,
                        device="cpu")
        model = CDL(letter, spec.delay_spread_s, fc, ut, bs, "uplink", min_speed=v, max_speed=v,
                    device="cpu")
    else:
        model = TDL(letter, spec.delay_spread_s, fc, min_speed=v, max_speed=v,
                    num_rx_ant=spec.antennas, num_tx_ant=1, device="cpu")
    freqs = subcarrier_frequencies(spec.subcarriers, spec.spacing_hz, device="cpu")
    out = np.empty((n, spec.antennas, spec.frames, spec.subcarriers), dtype=np.complex64)
    with torch.no_grad():
        for start in range(0, n, chunk):
            b = min(chunk, n - start)
            a, tau = model(batch_size=b, num_time_steps=spec.frames,
                           sampling_frequency=1.0 / spec.frame_s)
            h = cir_to_ofdm_channel(freqs, a, tau, normalize=True)  # (b,1,A,1,1,T,F)
            out[start:start + b] = h[:, 0, :, 0, 0].numpy()
    return out
