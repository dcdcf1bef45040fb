"""DDA transform, time-varying Sionna channels and the DeepMIMO-style loader."""

import numpy as np
import pytest

from hwsim.errors import HwsimError
from models.channels.dda import angle_delay, angle_delay_inverse, dda_to_stf, stf_to_dda
from models.channels.deepmimo import load_channels
from models.channels.timevarying import ChannelSpec, generate, parse_profiles


def _rand(shape, rng, dtype=np.complex128):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)


# float tolerances: a length-n FFT round trip in complex64 errs by a few ulp · log2(n) of the
# largest magnitude (≈ 1e-6 here); complex128 by ≈ 1e-15.
@pytest.mark.parametrize("dtype, tol", [(np.complex64, 5e-6), (np.complex128, 1e-12)])
def test_dda_round_trip_and_unitary(dtype, tol):
    rng = np.random.default_rng(0)
    H = _rand((3, 8, 6, 16), rng, dtype)
    X = stf_to_dda(H)
    assert X.dtype == dtype and X.shape == H.shape
    assert np.abs(dda_to_stf(X) - H).max() <= tol * np.abs(H).max()
    assert np.isclose(np.sum(np.abs(X) ** 2), np.sum(np.abs(H) ** 2), rtol=tol * 10)
    assert np.abs(angle_delay_inverse(angle_delay(H)) - H).max() <= tol * np.abs(H).max()


def test_dda_maps_a_plane_wave_to_one_bin():
    A, T, F = 8, 6, 16
    ka, kt, kd = 3, -2, 5  # spatial frequency 3/8, Doppler −2/6 per frame, delay bin 5
    a, t, f = np.meshgrid(np.arange(A), np.arange(T), np.arange(F), indexing="ij")
    H = np.exp(2j * np.pi * (ka * a / A + kt * t / T - kd * f / F))
    X = stf_to_dda(H)
    peak = np.unravel_index(np.argmax(np.abs(X)), X.shape)
    assert peak == (A // 2 + ka, T // 2 + kt, kd)
    assert np.isclose(np.abs(X[peak]) ** 2, A * T * F)
    X2 = X.copy()
    X2[peak] = 0
    assert np.abs(X2).max() < 1e-9


def test_dda_rejects_bad_shape():
    with pytest.raises(HwsimError, match="antennas, frames, subcarriers"):
        stf_to_dda(np.zeros((4, 4)))


def test_sionna_channels_shape_power_and_time_variation():
    spec = ChannelSpec(profile="CDL-C", speed_kmh=120.0, antennas=4, frames=4, subcarriers=8)
    H = generate(spec, 6, seed=3)
    assert H.shape == (6, 4, 4, 8) and H.dtype == np.complex64
    assert np.isclose(np.mean(np.abs(H) ** 2), 1.0, rtol=1e-3)  # Sionna's normalize=True
    assert np.abs(H[:, :, 1:] - H[:, :, :1]).max() > 1e-2       # it moves at 120 km/h
    assert np.array_equal(H, generate(spec, 6, seed=3))          # seeded
    still = generate(ChannelSpec(**{**spec.to_dict(), "speed_kmh": 0.0}), 2, seed=3)
    assert np.abs(still - still[:, :, :1]).max() < 1e-5          # and stands still at 0
    tdl = generate(ChannelSpec(profile="TDL-A", antennas=4, frames=4, subcarriers=8), 2)
    assert tdl.shape == (2, 4, 4, 8) and np.all(np.isfinite(tdl))
    # the round trip holds on real Sionna channels too
    assert np.abs(dda_to_stf(stf_to_dda(H)) - H).max() < 5e-6 * np.abs(H).max()


def test_channel_spec_and_profiles_reject_bad_input():
    with pytest.raises(HwsimError, match="profile"):
        ChannelSpec(profile="CDL-F")
    with pytest.raises(HwsimError, match="antennas"):
        ChannelSpec(antennas=0)
    with pytest.raises(HwsimError, match="speed"):
        ChannelSpec(speed_kmh=-1.0)
    with pytest.raises(HwsimError, match="unknown channel profile"):
        parse_profiles("CDL-A,UMi")
    assert parse_profiles(" cdl-a , TDL-E") == ["CDL-A", "TDL-E"]
    with pytest.raises(HwsimError, match="positive integer"):
        generate(ChannelSpec(), 0)


def test_deepmimo_loader_npy_npz_mat(tmp_path):
    from scipy.io import savemat

    rng = np.random.default_rng(1)
    H = _rand((5, 2, 8, 16), rng, np.complex64)
    np.save(tmp_path / "h.npy", H)
    np.savez(tmp_path / "h.npz", channel=H)
    savemat(tmp_path / "h.mat", {"channel": H})
    savemat(tmp_path / "split.mat", {"channel_real": H.real, "channel_imag": H.imag})
    savemat(tmp_path / "named.mat", {"myvar": H[:, 0]})
    for name in ("h.npy", "h.npz", "h.mat", "split.mat"):
        got = load_channels(tmp_path / name)
        assert got.dtype == np.complex64 and np.array_equal(got, H), name
    got = load_channels(tmp_path / "named.mat", key="myvar")  # 3-D: one rx antenna
    assert got.shape == (5, 1, 8, 16) and np.array_equal(got[:, 0], H[:, 0])


def test_deepmimo_loader_rejects_bad_files(tmp_path):
    from scipy.io import savemat

    with pytest.raises(HwsimError, match="does not exist"):
        load_channels(tmp_path / "none.npy")
    (tmp_path / "h.csv").write_text("1,2\n")
    with pytest.raises(HwsimError, match=r"\.npy, \.npz or \.mat"):
        load_channels(tmp_path / "h.csv")
    (tmp_path / "bad.npy").write_bytes(b"not numpy at all")
    with pytest.raises(HwsimError, match="cannot read channels"):
        load_channels(tmp_path / "bad.npy")
    savemat(tmp_path / "other.mat", {"x": np.ones((2, 2))})
    with pytest.raises(HwsimError, match="no channel variable"):
        load_channels(tmp_path / "other.mat")
    with pytest.raises(HwsimError, match="no variable 'y'"):
        load_channels(tmp_path / "other.mat", key="y")
    np.save(tmp_path / "flat.npy", np.ones((4, 4)))
    with pytest.raises(HwsimError, match="got shape"):
        load_channels(tmp_path / "flat.npy")
    np.save(tmp_path / "nan.npy", np.full((1, 1, 2, 2), np.nan))
    with pytest.raises(HwsimError, match="NaN"):
        load_channels(tmp_path / "nan.npy")
