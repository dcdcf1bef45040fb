"""DVS event simulator and image loaders (models/snn/events.py)."""

import numpy as np
import pytest

from hwsim.errors import HwsimError
from models.snn.events import (
    DvsConfig,
    EventSet,
    convert_images,
    image_to_events,
    load_digits_images,
    load_images,
    load_sign_mnist_csv,
    to_frames,
)


@pytest.fixture(scope="module")
def digit():
    images, labels = load_digits_images()
    return images[0], int(labels[0])


def _csv(path, rows, header=True):
    lines = ["label," + ",".join(f"pixel{i}" for i in range(1, 785))] if header else []
    lines += [",".join(str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + ("\n" if lines else ""))
    return path


def test_digits_are_bundled_and_scaled():
    images, labels = load_digits_images()
    assert images.shape == (1797, 8, 8) and labels.shape == (1797,)
    assert images.min() == 0.0 and images.max() == 1.0
    assert set(labels.tolist()) == set(range(10))


def test_events_are_sorted_typed_and_inside_the_window(digit):
    cfg = DvsConfig()
    ev = image_to_events(digit[0], cfg, seed=3)
    assert len(ev) > 1000
    assert ev.t.dtype == np.int64 and ev.x.dtype == np.int16 and ev.p.dtype == np.int8
    assert np.all(np.diff(ev.t) >= 0)
    assert ev.t.min() >= 0 and ev.t.max() < cfg.window_ms * 1000
    assert np.all(ev.p == 1)  # ON events only, as the paper keeps
    assert ev.x.max() < 48 and ev.y.max() < 48 and ev.x.min() >= 0
    assert np.array_equal(ev.address, ev.y.astype(np.int64) * 48 + ev.x)


def test_seeded_and_reproducible(digit):
    a = image_to_events(digit[0], seed=1)
    b = image_to_events(digit[0], seed=1)
    c = image_to_events(digit[0], seed=2)
    assert np.array_equal(a.t, b.t) and np.array_equal(a.x, b.x)
    assert len(a) != len(c) or not np.array_equal(a.t, c.t)


def test_refractory_period_holds_per_pixel(digit):
    ev = image_to_events(digit[0], DvsConfig(keep_negative=True), seed=0)
    addr = ev.address
    order = np.lexsort((ev.t, addr))
    t, a = ev.t[order], addr[order]
    same = a[1:] == a[:-1]
    # kept events of one pixel are ≥ 100 µs apart (1 µs lost to flooring the timestamps)
    assert np.all(np.diff(t)[same] >= 99)
    assert np.any(ev.p < 0)


def test_blank_image_gives_background_noise_only():
    blank = np.zeros((8, 8))
    quiet = image_to_events(blank, DvsConfig(noise_rate=0.0), seed=0)
    assert len(quiet) == 0
    noisy = image_to_events(blank, DvsConfig(noise_rate=0.01), seed=0)
    # ON half of 0.01 events/pixel/ms over 48×48 px and the 35 ms window: ≈ 403, Poisson
    assert 300 < len(noisy) < 520


def test_higher_threshold_gives_fewer_events(digit):
    low = image_to_events(digit[0], DvsConfig(threshold=0.3, noise_rate=0.0), seed=0)
    high = image_to_events(digit[0], DvsConfig(threshold=0.8, noise_rate=0.0), seed=0)
    assert 0 < len(high) < len(low)


def test_canvas_places_the_image(digit):
    ev = image_to_events(digit[0], DvsConfig(canvas=64, noise_rate=0.0), seed=5)
    assert ev.width == 64 and ev.x.max() < 64
    assert np.ptp(ev.x) <= 48 + 4 and np.ptp(ev.y) <= 48 + 4  # image ± the 2 px shakes


def test_frames_count_every_event_and_set_roundtrip(tmp_path):
    images, labels = load_digits_images()
    es = convert_images(images[:3], labels[:3], seed=0)
    fr = to_frames(es)
    assert fr.shape == (3, 35, 48, 48) and fr.dtype == np.uint8
    assert np.array_equal(fr.reshape(3, -1).sum(1), np.diff(es.offsets))
    es.save(tmp_path / "e.npz")
    back = EventSet.load(tmp_path / "e.npz")
    assert np.array_equal(back.t, es.t) and np.array_equal(back.labels, labels[:3])
    assert np.array_equal(to_frames(back[1]), fr[1])


def test_sign_mnist_csv_loader(tmp_path):
    rng = np.random.default_rng(0)
    rows = [[lab, *rng.integers(0, 256, 784)] for lab in (0, 24, 10)]
    images, labels = load_sign_mnist_csv(_csv(tmp_path / "s.csv", rows))
    assert images.shape == (3, 28, 28) and labels.tolist() == [0, 24, 10]
    assert np.allclose(images[1].ravel() * 255, rows[1][1:])
    images2, _ = load_images(tmp_path / "s.csv")
    assert np.array_equal(images, images2)


@pytest.mark.parametrize("rows,header,msg", [
    ([], False, "is empty"),
    ([], True, "no images"),
    ([[0, *[1] * 783]], True, "785"),
    ([[9, *[1] * 784]], True, "not a static letter"),
    ([[0, *[300] * 784]], True, "0 … 255"),
])
def test_sign_mnist_csv_bad_input(tmp_path, rows, header, msg):
    with pytest.raises(HwsimError, match=msg):
        load_sign_mnist_csv(_csv(tmp_path / "bad.csv", rows, header))


def test_images_of_the_wrong_shape(tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros((4, 64)))
    with pytest.raises(HwsimError, match=r"\(N, H, W\)"):
        load_images(tmp_path / "flat.npy")
    with pytest.raises(HwsimError, match="canvas"):
        DvsConfig(size=48, canvas=32)
