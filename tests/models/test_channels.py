"""Sionna CDL channel data, LS / LMMSE baselines and the NMSE metric."""

import numpy as np
import pytest

from hwsim.errors import HwsimError
from models.channels import (
    Geometry,
    Lmmse,
    generate_channels,
    ls_interpolate,
    ls_observation,
    nmse,
    nmse_db,
    pack_real,
    pilot_grid,
    unpack_real,
)

SMALL = Geometry(bs_ant=8, ue_ant=2, subcarriers=48, space_comp=1)


@pytest.fixture(scope="module")
def chans():
    return generate_channels(SMALL, 384, seed=3)


def test_sionna_cdl_shape_power_and_seed(chans):
    assert chans.shape == (384, 48, 16) and chans.dtype == np.complex64
    # cir_to_ofdm_channel(normalize=True) gives unit mean power per resource element
    assert np.mean(np.abs(chans) ** 2) == pytest.approx(1.0, rel=1e-3)
    again = generate_channels(SMALL, 4, seed=3)
    assert np.array_equal(again, generate_channels(SMALL, 4, seed=3))
    assert not np.array_equal(again, generate_channels(SMALL, 4, seed=4))


def test_ls_interpolation_hits_pilots_and_lines():
    g = Geometry(bs_ant=8, ue_ant=2, subcarriers=48, space_comp=2)
    rng = np.random.default_rng(0)
    H = (rng.standard_normal((3, 48, 16)) + 1j * rng.standard_normal((3, 48, 16))).astype(np.complex64)
    est = ls_interpolate(pilot_grid(g, H), g)
    H4, E4 = H.reshape(3, 48, 2, 8), est.reshape(3, 48, 2, 8)
    np.testing.assert_allclose(E4[:, ::4, :, ::2], H4[:, ::4, :, ::2], rtol=1e-6)
    # a channel linear in frequency and antenna is recovered between the pilots (not past them)
    f = np.arange(48)[:, None, None]
    a = np.arange(8)[None, None, :]
    lin = np.broadcast_to((0.1 * f + 0.3j * a + 1), (48, 2, 8)).reshape(1, 48, 16)
    e = ls_interpolate(pilot_grid(g, lin), g).reshape(48, 2, 8)
    np.testing.assert_allclose(e[:45, :, :7], lin.reshape(48, 2, 8)[:45, :, :7], rtol=1e-5)
    # past the last pilots the edge values are held; extrapolated, the whole line comes back
    np.testing.assert_allclose(e[45:], np.broadcast_to(e[44:45], (3, 2, 8)), rtol=1e-6)
    x = ls_interpolate(pilot_grid(g, lin), g, extrapolate=True)
    np.testing.assert_allclose(x, lin, rtol=1e-5)
    # and at the pilots both rules are the same estimate
    ext = ls_interpolate(pilot_grid(g, H), g, extrapolate=True).reshape(3, 48, 2, 8)
    np.testing.assert_allclose(ext[:, ::4, :, ::2], H4[:, ::4, :, ::2], rtol=1e-6)


def test_extrapolation_is_sionnas_linear_interpolator_rule():
    """Sionna's ``LinearInterpolator`` (sionna/ofdm/channel_estimation.py): a point outside the
    pilots' span takes the line through the first (last) two pilots; one pilot is held."""
    from models.channels import _interp_matrix

    grid, pts = np.arange(10.0), np.array([2.0, 5.0, 8.0])
    v = np.array([1.0, 4.0, -2.0])
    got = _interp_matrix(grid, pts, extrapolate=True) @ v
    want = [1 + (g - 2) * 1.0 if g < 5 else 4 + (g - 5) * -2.0 for g in grid]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)  # float rounding of np.interp
    np.testing.assert_allclose(_interp_matrix(grid, pts[:1], extrapolate=True) @ v[:1], 1.0)


def test_lmmse_beats_ls_and_noise_level_is_right(chans):
    rng = np.random.default_rng(1)
    train, test = chans[:320], chans[320:]
    Y = ls_observation(test, SMALL, 10.0, rng)
    # the pilot noise has the stated variance: LS error at the pilots ≈ −10 dB
    assert nmse_db(pilot_grid(SMALL, test), Y) == pytest.approx(-10.0, abs=0.3)
    ls = nmse_db(test, ls_interpolate(Y, SMALL))
    lm = nmse_db(test, Lmmse(SMALL, train).estimate(Y, 10.0))
    assert lm < ls - 3.0


def test_nmse_and_packing():
    rng = np.random.default_rng(2)
    H = rng.standard_normal((5, 4, 3)) + 1j * rng.standard_normal((5, 4, 3))
    assert np.all(nmse(H, H) == 0)
    assert nmse_db(H, np.zeros_like(H)) == pytest.approx(0.0)
    assert nmse_db(H, 0.5 * H) == pytest.approx(10 * np.log10(0.25))
    assert np.array_equal(unpack_real(pack_real(H)), H.astype(np.complex64))
    with pytest.raises(HwsimError, match="equal shapes"):
        nmse(H, H[:, :2])


@pytest.mark.parametrize("kw, msg", [
    ({"subcarriers": 50}, "freq_comp"),
    ({"bs_ant": 6}, "space_comp"),
    ({"ue_ant": 0}, "ue_ant"),
    ({"cdl_model": "F"}, "CDL model"),
])
def test_bad_geometry(kw, msg):
    with pytest.raises(HwsimError, match=msg):
        Geometry(**kw)


def test_wrong_shapes_are_one_line_errors():
    with pytest.raises(HwsimError, match="do not fit geometry"):
        pilot_grid(SMALL, np.zeros((2, 47, 16), complex))
    with pytest.raises(HwsimError, match="does not fit geometry"):
        ls_interpolate(np.zeros((2, 5, 5), complex), SMALL)
