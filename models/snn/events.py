"""Static images → DVS event streams, as the event-based SL-MNIST pipeline of arXiv 2605.06005.

Pipeline (:class:`DvsConfig` holds every parameter; the defaults are the paper's where it states
one, see ``REFERENCE.md``):

1. the image (grey levels in [0, 1]) is nearest-neighbour upsampled to ``size`` px (28 → 48) and
   placed on a ``canvas``-px sensor (centred when ``canvas == size``, at a random offset else);
2. ``frames`` "shake" frames follow it, each shifted by a random 1–2 px in x and in y (sign at
   random), each lasting U(2.5, 3.5) ms; the intensity moves linearly between frames;
3. a DVS pixel model: log intensity ``log(I + log_eps)``, a per-pixel contrast threshold
   ``threshold ± U(0.05, 0.15)`` (random sign per pixel), an event each time the log intensity
   moves one threshold away from the pixel's memorized level, at the linearly interpolated
   crossing time; background noise events (``noise_rate`` per pixel per ms, either polarity);
   sensor latency (100 µs) plus Gaussian jitter; a refractory period (100 µs) per pixel;
4. positive events only (``keep_negative=False``), the first 1 ms dropped, 35 ms kept.

Reading notes where the paper leaves a choice open (documented in ``docs/snn.md``): the sign of
the threshold noise is random per pixel, the jitter's standard deviation is 10 µs, and the
background noise rate of 0.01 is per pixel per millisecond.

Events are ``(t, x, y, p)`` arrays: ``t`` in µs (int64, from the start of the kept window),
``x``, ``y`` pixel coordinates (int16), ``p`` polarity ±1 (int8). :func:`to_frames` bins them into
1 ms frames, the SNN's input tensor. This module needs only numpy (and scikit-learn for the
embedded digits).
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from hwsim.errors import HwsimError

__all__ = [
    "DvsConfig",
    "EventSet",
    "Events",
    "convert_images",
    "image_to_events",
    "load_digits_images",
    "load_images",
    "load_sign_mnist_csv",
    "to_frames",
]

#: Sign Language MNIST: 24 static letters, labels 0 … 24 without 9 (J) (Z = 25 never appears).
SIGN_MNIST_SIDE = 28
SIGN_MNIST_LABELS = tuple(i for i in range(25) if i != 9)


@dataclass(frozen=True)
class DvsConfig:
    """Parameters of the static-image → event conversion (paper defaults).

    Parameters
    ----------
    size : int
        Side of the upsampled image in pixels (the paper upsamples 28 → 48).
    canvas : int
        Side of the sensor; ``canvas > size`` places the image at a random offset.
    frames : int
        Number of shake frames after the first, centred one.
    shift_px : tuple[int, int]
        Range (inclusive) of the shake shift magnitude in pixels, per axis.
    frame_ms : tuple[float, float]
        Range of one frame's duration in ms (uniform).
    threshold : float
        Nominal log-intensity contrast threshold.
    threshold_noise : tuple[float, float]
        Range of the per-pixel threshold deviation magnitude (uniform, random sign).
    log_eps : float
        Offset inside the logarithm, ``log(I + log_eps)`` for ``I`` in [0, 1].
    refractory_us, latency_us, jitter_us : float
        Per-pixel refractory period, sensor latency and latency jitter (Gaussian std).
    noise_rate : float
        Background noise events per pixel per ms.
    drop_ms, window_ms : float
        Events before ``drop_ms`` are dropped; ``window_ms`` after it are kept.
    keep_negative : bool
        Keep OFF events as well (the paper keeps ON events only).
    """

    size: int = 48
    canvas: int = 48
    frames: int = 20
    shift_px: tuple[int, int] = (1, 2)
    frame_ms: tuple[float, float] = (2.5, 3.5)
    threshold: float = 0.4
    threshold_noise: tuple[float, float] = (0.05, 0.15)
    log_eps: float = 0.1
    refractory_us: float = 100.0
    latency_us: float = 100.0
    jitter_us: float = 10.0
    noise_rate: float = 0.01
    drop_ms: float = 1.0
    window_ms: float = 35.0
    keep_negative: bool = False

    def __post_init__(self):
        for name in ("size", "canvas", "frames"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise HwsimError(f"DVS {name} must be a positive integer, not {v!r}")
        if self.canvas < self.size:
            raise HwsimError(f"DVS canvas ({self.canvas}) must be at least size ({self.size})")
        lo, hi = self.shift_px
        if not 0 <= lo <= hi:
            raise HwsimError(f"DVS shift_px must be 0 ≤ low ≤ high, not {self.shift_px}")
        if not 0 < self.frame_ms[0] <= self.frame_ms[1]:
            raise HwsimError(f"DVS frame_ms must be 0 < low ≤ high, not {self.frame_ms}")
        if self.threshold - self.threshold_noise[1] <= 0 or self.threshold_noise[0] < 0:
            raise HwsimError("DVS threshold minus its largest noise must stay positive")
        for name in ("log_eps", "window_ms"):
            if not getattr(self, name) > 0:
                raise HwsimError(f"DVS {name} must be positive, not {getattr(self, name)}")
        for name in ("refractory_us", "latency_us", "jitter_us", "noise_rate", "drop_ms"):
            if getattr(self, name) < 0:
                raise HwsimError(f"DVS {name} must be ≥ 0, not {getattr(self, name)}")

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class Events:
    """One event stream: ``t`` (µs, int64), ``x``, ``y`` (int16), ``p`` (±1, int8), sorted by t."""

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    p: np.ndarray
    width: int
    height: int

    def __len__(self) -> int:
        return int(self.t.size)

    @property
    def address(self) -> np.ndarray:
        """The paper's event address ``y · width + x`` (int64)."""
        return self.y.astype(np.int64) * self.width + self.x.astype(np.int64)


@dataclass
class EventSet:
    """Event streams of many images, concatenated; stream ``i`` is ``offsets[i]:offsets[i+1]``."""

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    p: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    width: int
    height: int
    window_us: int

    def __len__(self) -> int:
        return int(self.labels.size)

    def __getitem__(self, i: int) -> Events:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return Events(self.t[a:b], self.x[a:b], self.y[a:b], self.p[a:b], self.width, self.height)

    def save(self, path: Path) -> None:
        """Write an ``.npz`` atomically (see :func:`hwsim.files.atomic_write_bytes`)."""
        import io

        from hwsim.files import atomic_write_bytes

        buf = io.BytesIO()
        np.savez_compressed(buf, t=self.t, x=self.x, y=self.y, p=self.p, offsets=self.offsets,
                            labels=self.labels, width=self.width, height=self.height,
                            window_us=self.window_us)
        atomic_write_bytes(Path(path), buf.getvalue())

    @classmethod
    def load(cls, path: Path) -> EventSet:
        """Inverse of :meth:`save`, checked: integer arrays, one ``t, x, y, p`` per event,
        addresses inside the sensor, polarities ±1, offsets from 0 to the event count."""
        from hwsim.loading import read_npz

        path = Path(path)
        names = ("t", "x", "y", "p", "offsets", "labels", "width", "height", "window_us")
        d = read_npz(path, dict.fromkeys(names, "int"), "event file")
        if any(d[k].ndim != 0 or int(d[k]) < 1 for k in ("width", "height", "window_us")):
            raise HwsimError(f"{path}: width, height and window_us must be positive scalars")
        t = d["t"]
        if t.ndim != 1 or any(d[k].shape != t.shape for k in "xyp"):
            raise HwsimError(f"{path}: t, x, y, p must be 1-D arrays of one length")
        es = cls(t, d["x"], d["y"], d["p"], d["offsets"], d["labels"],
                 int(d["width"]), int(d["height"]), int(d["window_us"]))
        if t.size and (es.x.min() < 0 or es.x.max() >= es.width or es.y.min() < 0
                       or es.y.max() >= es.height or not np.all(np.abs(es.p) == 1)):
            raise HwsimError(f"{path}: an event lies outside the {es.width}×{es.height} sensor "
                             "or has a polarity other than ±1")
        o = es.offsets
        if (o.ndim != 1 or es.labels.ndim != 1 or o.size != es.labels.size + 1 or int(o[0]) != 0
                or int(o[-1]) != t.size or np.any(np.diff(o) < 0)):
            raise HwsimError(f"{path}: offsets do not match the event arrays")
        return es


# ------------------------------------------------------------------------------------------
# Loaders
def load_digits_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits: (1797, 8, 8) grey levels in [0, 1] and labels 0 … 9."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0).astype(np.float64), d.target.astype(np.int64)


def load_sign_mnist_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Sign Language MNIST CSV (``label,pixel1,…,pixel784``) → (N, 28, 28) in [0, 1], labels.

    Raises
    ------
    HwsimError
        On a missing file, a wrong header, a row of the wrong length, a non-integer value, a
        pixel outside 0 … 255, a label that is not a static letter, or no data rows at all.
    """
    path = Path(path)
    if not path.is_file():
        raise HwsimError(f"CSV file {path} does not exist")
    n_pix = SIGN_MNIST_SIDE**2
    want = ["label", *(f"pixel{i}" for i in range(1, n_pix + 1))]
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise HwsimError(f"{path} is not UTF-8 text (expected a CSV)") from None
    except OSError as e:
        raise HwsimError(f"cannot read {path}: {e.strerror}") from None
    with io.StringIO(text, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise HwsimError(f"{path} is empty (expected a header label,pixel1,…,pixel{n_pix})")
        if [h.strip() for h in header] != want:
            raise HwsimError(f"{path}: header is not label,pixel1,…,pixel{n_pix} "
                             f"({len(header)} columns)")
        rows = []
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != n_pix + 1:
                raise HwsimError(f"{path}:{line}: {len(row)} values, expected {n_pix + 1}")
            try:
                rows.append([int(v) for v in row])
            except ValueError:
                raise HwsimError(f"{path}:{line}: values must be integers") from None
    if not rows:
        raise HwsimError(f"{path} has a header but no images")
    arr = np.asarray(rows, dtype=np.int64)
    labels, pix = arr[:, 0], arr[:, 1:]
    bad = np.flatnonzero(~np.isin(labels, SIGN_MNIST_LABELS))
    if bad.size:
        raise HwsimError(f"{path}:{bad[0] + 2}: label {labels[bad[0]]} is not a static letter "
                         f"(0 … 24 without 9)")
    if pix.min() < 0 or pix.max() > 255:
        line = int(np.flatnonzero((pix < 0).any(1) | (pix > 255).any(1))[0]) + 2
        raise HwsimError(f"{path}:{line}: pixel values must be 0 … 255")
    return pix.reshape(-1, SIGN_MNIST_SIDE, SIGN_MNIST_SIDE) / 255.0, labels


def load_images(source: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels from ``digits`` (embedded), a Sign Language MNIST ``.csv``, or an
    ``.npy`` / ``.npz`` (``images`` (N, H, W) in [0, 1] or 0 … 255, optional ``labels``)."""
    if str(source) == "digits":
        return load_digits_images()
    path = Path(source)
    if path.suffix.lower() == ".csv":
        return load_sign_mnist_csv(path)
    if path.suffix.lower() not in (".npy", ".npz"):
        raise HwsimError(f"images must be 'digits', a .csv, .npy or .npz file, not {source}")
    if not path.is_file():
        raise HwsimError(f"image file {path} does not exist")
    try:
        z = np.load(path, allow_pickle=False)
        if isinstance(z, np.ndarray):
            images, labels = z, None
        else:
            with z:
                images = z["images"]
                labels = z["labels"] if "labels" in z.files else None
        images = _check_images(images, str(path))
        labels = (np.zeros(len(images), np.int64) if labels is None
                  else np.asarray(labels, np.int64))
    except (KeyError, ValueError, TypeError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise HwsimError(f"cannot read images from {path} ({e})") from None
    if labels.shape != (len(images),):
        raise HwsimError(f"{path}: labels must be one per image ({len(images)}), not shape "
                         f"{labels.shape}")
    return images, labels


def _check_images(images, what: str) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[0] < 1 or min(images.shape[1:]) < 2:
        raise HwsimError(f"{what}: images must have shape (N, H, W) with N ≥ 1 and H, W ≥ 2, "
                         f"not {images.shape}")
    if images.dtype.kind not in "uif":
        raise HwsimError(f"{what}: images must be numbers, not dtype {images.dtype}")
    images = images.astype(np.float64)
    if not np.all(np.isfinite(images)) or images.min() < 0:
        raise HwsimError(f"{what}: images must be finite and non-negative")
    if images.max() > 1.0:
        if images.max() > 255:
            raise HwsimError(f"{what}: grey levels must be in [0, 1] or 0 … 255")
        images = images / 255.0
    return images


# ------------------------------------------------------------------------------------------
# The simulator
def _upsample(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape
    rows = (np.arange(size) * h) // size
    cols = (np.arange(size) * w) // size
    return img[rows][:, cols]


def _shifted(img: np.ndarray, dx: int, dy: int) -> np.ndarray:
    out = np.zeros_like(img)
    h, w = img.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = img[ys, xs]
    return out


def _crossings(l0, l1, lref, theta, t0, dur):
    """Events of every pixel while log intensity moves l0 → l1 linearly over [t0, t0+dur]."""
    d = l1 - lref
    n = np.floor(np.abs(d) / theta).astype(np.int64)
    pix = np.flatnonzero(n)
    if pix.size == 0:
        return np.empty(0), np.empty(0, np.int64), np.empty(0, np.int8), lref
    counts = n[pix]
    rep = np.repeat(pix, counts)
    j = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + 1
    sign = np.sign(d[rep])
    level = lref[rep] + sign * j * theta[rep]
    span = l1[rep] - l0[rep]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(span != 0, (level - l0[rep]) / span, 1.0)
    t = t0 + dur * np.clip(frac, 0.0, 1.0)
    new_ref = lref.copy()
    new_ref[pix] += np.sign(d[pix]) * counts * theta[pix]
    return t, rep, sign.astype(np.int8), new_ref


def _refractory(t, pix, refr):
    """Keep an event only if its pixel's last kept event is ≥ ``refr`` earlier."""
    order = np.lexsort((t, pix))
    t, pix = t[order], pix[order]
    keep = np.ones(t.size, bool)
    close = np.flatnonzero((np.diff(t) < refr) & (pix[1:] == pix[:-1])) + 1
    for i in close:  # only events whose predecessor is close can be dropped
        j = i - 1
        while not keep[j]:
            j -= 1
        if t[i] - t[j] < refr:
            keep[i] = False
    return order[keep]


def image_to_events(image, cfg: DvsConfig = DvsConfig(), seed: int | tuple = 0) -> Events:
    """One grey-level image (H, W) in [0, 1] → its DVS event stream (see the module docstring)."""
    img = _check_images(np.asarray(image)[None], "image")[0]
    rng = np.random.default_rng(seed)
    c = cfg.canvas
    base = np.zeros((c, c))
    ox, oy = (rng.integers(0, c - cfg.size + 1, 2) if c > cfg.size else (0, 0))
    base[oy:oy + cfg.size, ox:ox + cfg.size] = _upsample(img, cfg.size)

    n_pix = c * c
    sign = rng.choice((-1.0, 1.0), n_pix)
    theta = cfg.threshold + sign * rng.uniform(*cfg.threshold_noise, n_pix)
    lo, hi = cfg.shift_px
    mags = rng.integers(lo, hi + 1, (cfg.frames, 2))
    signs = rng.choice((-1, 1), (cfg.frames, 2))
    shifts = mags * signs
    durs = rng.uniform(*cfg.frame_ms, cfg.frames) * 1000.0  # µs

    def log_i(im):
        return np.log(im.ravel() + cfg.log_eps)

    prev = log_i(base)
    lref = prev.copy()
    ts, ps, pols = [], [], []
    t0 = 0.0
    for k in range(cfg.frames):
        cur = log_i(_shifted(base, int(shifts[k, 0]), int(shifts[k, 1])))
        t, pix, pol, lref = _crossings(prev, cur, lref, theta, t0, durs[k])
        ts.append(t)
        ps.append(pix)
        pols.append(pol)
        prev, t0 = cur, t0 + durs[k]
    total_us = t0
    n_noise = rng.poisson(cfg.noise_rate * n_pix * total_us / 1000.0)
    ts.append(rng.uniform(0, total_us, n_noise))
    ps.append(rng.integers(0, n_pix, n_noise))
    pols.append(rng.choice(np.array((-1, 1), np.int8), n_noise))
    t = np.concatenate(ts) + cfg.latency_us + rng.normal(0, cfg.jitter_us, sum(map(len, ts)))
    pix = np.concatenate(ps)
    pol = np.concatenate(pols).astype(np.int8)
    t = np.maximum(t, 0.0)
    keep = _refractory(t, pix, cfg.refractory_us)
    t, pix, pol = t[keep], pix[keep], pol[keep]
    if not cfg.keep_negative:
        t, pix, pol = t[pol > 0], pix[pol > 0], pol[pol > 0]
    t = t - cfg.drop_ms * 1000.0
    sel = (t >= 0) & (t < cfg.window_ms * 1000.0)
    t_us = np.floor(t[sel]).astype(np.int64)
    pix, pol = pix[sel], pol[sel]
    order = np.argsort(t_us, kind="stable")
    t_us, pix, pol = t_us[order], pix[order], pol[order]
    return Events(t_us, (pix % c).astype(np.int16), (pix // c).astype(np.int16), pol, c, c)


def convert_images(images, labels, cfg: DvsConfig = DvsConfig(), seed: int = 0,
                   progress: bool = False) -> EventSet:
    """Convert every image; image ``i`` uses the random stream ``(seed, i)`` (reproducible)."""
    images = _check_images(images, "images")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (images.shape[0],):
        raise HwsimError(f"{labels.size} labels for {images.shape[0]} images")
    it = range(images.shape[0])
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="events", unit="img")
    streams = [image_to_events(images[i], cfg, (seed, i)) for i in it]
    offsets = np.zeros(len(streams) + 1, np.int64)
    offsets[1:] = np.cumsum([len(s) for s in streams])

    def cat(attr, dtype):
        return np.concatenate([getattr(s, attr) for s in streams]).astype(dtype)

    return EventSet(cat("t", np.int64), cat("x", np.int16), cat("y", np.int16), cat("p", np.int8),
                    offsets, labels, cfg.canvas, cfg.canvas, int(cfg.window_ms * 1000))


def to_frames(events: Events | EventSet, steps: int = 35, step_us: int = 1000) -> np.ndarray:
    """Bin events into ``steps`` frames of ``step_us``: (steps, H, W) uint8 event counts
    (saturating at 255), or (N, steps, H, W) for an :class:`EventSet`."""
    if steps < 1 or step_us < 1:
        raise HwsimError(f"frames need steps ≥ 1 and step_us ≥ 1, not {steps}, {step_us}")
    if isinstance(events, EventSet):
        return np.stack([to_frames(events[i], steps, step_us) for i in range(len(events))])
    frames = np.zeros((steps, events.height, events.width), np.int64)
    b = events.t // step_us
    sel = (b >= 0) & (b < steps)
    np.add.at(frames, (b[sel], events.y[sel].astype(np.int64), events.x[sel].astype(np.int64)), 1)
    return np.minimum(frames, 255).astype(np.uint8)
