"""Exact integer arithmetic at the speed of float arithmetic: the golden model's fast paths.

The golden kernels specify integer hardware, so every result they return is an exact integer.
Most of their work is three kinds of operation, and each has a fast form that is *proved* exact
before it is taken:

* **Matrix products of codes** (:func:`matmul_codes`). A sum of ``k`` products of codes with
  ``|a| ≤ A`` and ``|b| ≤ B`` has every partial sum, in any order the BLAS may choose, an integer
  of magnitude at most ``k·A·B``. A binary float type with a ``p``-bit significand holds every
  integer below ``2**p`` exactly, and the sum, product (and fused multiply-add) of two such
  integers is exact when the exact result is one too. So while ``k·A·B < 2**24`` a float32 GEMM
  returns the exact integer result, while ``k·A·B < 2**53`` a float64 GEMM does; past that the
  product stays in int64 (numpy's integer matmul, exact while ``k·A·B < 2**63``, which callers
  guarantee by their accumulator widths). The bound is computed per call from the shapes and the
  operands' declared peaks (:func:`matmul_path`); operands outside their peaks are refused. A
  2-D ``b`` too long for one float32 GEMM is cut along ``k`` into slices that each fit
  (:func:`split_length`, e.g. 1 023 terms of int8 × int8), whose exact sums add in int64.
* **Bit lengths and integer square roots** (:func:`bit_length`, :func:`isqrt`): a float64
  estimate corrected by exact integer comparisons, so the result equals Python's
  ``int.bit_length`` / ``math.isqrt`` for every int64 input.
* **Normalized reciprocals** (:func:`reciprocal`): ``r = floor(2**k / s)`` in int64 where
  ``2**k`` fits (``k ≤ 62``), exact Python integers for the rare rest.

Contract: each function returns exactly what its int64 / Python-integer definition returns
(``tests/golden/test_exact.py`` proves it on random and extreme codes, at each bound and just
past it, where the fast path must not be taken). :data:`FORCE_INT64` switches every matrix
product to the int64 path (a reference for tests and for ``hwsim bench golden``).
"""

from __future__ import annotations

import contextlib

import numpy as np

from hwsim.errors import HwsimError

__all__ = [
    "FLOAT32_EXACT",
    "FLOAT64_EXACT",
    "ConstOperand",
    "bit_length",
    "force_int64",
    "forced",
    "isqrt",
    "matmul_codes",
    "matmul_path",
    "reciprocal",
    "split_length",
]

#: integers of magnitude below these are exact in float32 / float64 (24- / 53-bit significands)
FLOAT32_EXACT = 1 << 24
FLOAT64_EXACT = 1 << 53

_FORCE_INT64 = False


@contextlib.contextmanager
def force_int64():
    """Within this context every :func:`matmul_codes` takes the int64 path (the reference)."""
    global _FORCE_INT64
    old, _FORCE_INT64 = _FORCE_INT64, True
    try:
        yield
    finally:
        _FORCE_INT64 = old


def forced() -> bool:
    """Whether :func:`force_int64` is in effect (callers with their own fast paths honour it)."""
    return _FORCE_INT64


def matmul_path(k: int, a_peak: int, b_peak: int) -> str:
    """The exact path of a length-``k`` dot product of codes bounded by ``a_peak``, ``b_peak``:
    ``"float32"`` while ``k·a_peak·b_peak < 2**24``, ``"float64"`` while ``< 2**53``, else
    ``"int64"``."""
    bound = int(k) * int(a_peak) * int(b_peak)
    if _FORCE_INT64:
        return "int64"
    if bound < FLOAT32_EXACT:
        return "float32"
    if bound < FLOAT64_EXACT:
        return "float64"
    return "int64"


class ConstOperand:
    """A constant operand of :func:`matmul_codes` (a weight matrix): its codes are copied and
    checked against ``peak`` once, and converted to each float type at most once.

    ``codes`` (…, k, m) as ``b`` of :func:`matmul_codes`; read-only after construction."""

    def __init__(self, codes, peak: int):
        codes = np.array(codes, dtype=np.int64)
        if codes.ndim < 1:
            raise HwsimError("a matmul operand must have at least one dimension")
        if _peak_of(codes) > peak:
            raise HwsimError(f"constant operand holds a code of magnitude {_peak_of(codes)} > "
                             f"its declared peak {peak}")
        codes.setflags(write=False)
        self.codes, self.peak = codes, int(peak)
        self._as: dict = {}

    @property
    def shape(self) -> tuple:
        return self.codes.shape

    def as_type(self, dtype) -> np.ndarray:
        """The codes as ``dtype`` (float32, float64 or int64), contiguous, cached."""
        key = np.dtype(dtype)
        if key not in self._as:
            arr = np.ascontiguousarray(self.codes, dtype=key)
            arr.setflags(write=False)
            self._as[key] = arr
        return self._as[key]


def _peak_of(x: np.ndarray) -> int:
    return max(-int(x.min()), int(x.max())) if x.size else 0


def matmul_codes(a, b, a_peak: int, b_peak: int, *, checked: bool = False) -> np.ndarray:
    """Exact ``a @ b`` of integer codes (int64 result), on the fastest exact path.

    ``a`` (…, n, k) and ``b`` (…, k, m) broadcast as :func:`numpy.matmul`; every code of ``a``
    lies in ``[−a_peak, a_peak]`` and of ``b`` in ``[−b_peak, b_peak]``. ``b`` may be a
    :class:`ConstOperand` (weights converted once; its own peak replaces ``b_peak``). With ``checked=True``
    the caller has already verified that (a format check); otherwise it is verified here (one
    pass over each operand) and a code outside its peak raises :class:`HwsimError`.
    """
    const = b if isinstance(b, ConstOperand) else None
    if const is not None:
        b_peak = const.peak
    a = np.asarray(a)
    b = const.codes if const is not None else np.asarray(b)
    if a.ndim == 0 or b.ndim == 0:
        raise HwsimError("matmul operands must have at least one dimension")
    if not checked:
        for name, x, peak in (("a", a, a_peak), ("b", b, b_peak)):
            if const is not None and name == "b":
                continue
            if x.dtype.kind not in "iub":
                raise HwsimError(f"matmul operand {name} must hold integer codes, not {x.dtype}")
            if _peak_of(x) > peak:
                raise HwsimError(f"matmul operand {name} holds a code of magnitude "
                                 f"{_peak_of(x)} > its declared peak {peak}")
    k = a.shape[-1]
    path = matmul_path(k, a_peak, b_peak)
    kc = split_length(a_peak, b_peak)
    if path != "float32" and not _FORCE_INT64 and kc and b.ndim == 2:
        # k in slices of kc terms, each an exact float32 GEMM, their sums added in int64
        af = a.astype(np.float32)
        bf = const.as_type(np.float32) if const is not None else b.astype(np.float32)
        out = np.matmul(af[..., :kc], bf[:kc]).astype(np.int64)
        for lo in range(kc, k, kc):
            out += np.matmul(af[..., lo:lo + kc], bf[lo:lo + kc]).astype(np.int64)
        return out
    ft = {"float32": np.float32, "float64": np.float64, "int64": np.int64}[path]
    bt = const.as_type(ft) if const is not None else b.astype(ft, copy=False)
    return np.matmul(a.astype(ft, copy=False), bt).astype(np.int64, copy=False)


#: the shortest slice of a dot product worth its own float32 GEMM (:func:`split_length`)
MIN_SPLIT = 256


def split_length(a_peak: int, b_peak: int) -> int:
    """Terms per slice when a dot product too long for one exact float32 GEMM is cut into
    slices that each are (``kc · a_peak · b_peak < 2**24``); 0 where such slices would be
    shorter than :data:`MIN_SPLIT` (then the product takes the float64 or int64 path)."""
    kc = (FLOAT32_EXACT - 1) // max(int(a_peak) * int(b_peak), 1)
    return kc if kc >= MIN_SPLIT else 0


# ------------------------------------------------------------------------------------------
def bit_length(x) -> np.ndarray:
    """``int(v).bit_length()`` of each non-negative int64 ``v`` (int64 array, 0 for 0)."""
    x = np.asarray(x, dtype=np.int64)
    if x.size and x.min() < 0:
        raise HwsimError("bit length of a negative number")
    _, e = np.frexp(x.astype(np.float64))        # v ≈ m·2**e, 0.5 ≤ m < 1: e is bitlen or +1
    e = e.astype(np.int64)
    # float64 rounding can carry into the next power of two (v ≥ 2**53): correct by one
    e -= (e > 0) & ((x >> np.maximum(e - 1, 0)) == 0)
    return e


def isqrt(v) -> np.ndarray:
    """Exact ``floor(sqrt(v))`` of non-negative int64 integers (int64 array)."""
    v = np.asarray(v, dtype=np.int64)
    if v.size and v.min() < 0:
        raise HwsimError("integer square root of a negative number")
    r = np.floor(np.sqrt(v.astype(np.float64))).astype(np.int64)
    # the float root is off by at most one; compare by division so nothing overflows int64
    for _ in range(2):
        r = np.where((r > 0) & (v // np.maximum(r, 1) < r), r - 1, r)      # r² > v
        up = r + 1
        r = np.where(v // up >= up, up, r)                                 # (r+1)² ≤ v
    return r


def reciprocal(s, recip_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalized integer reciprocal: ``(r, k)`` with ``k = bitlen(s) − 1 + recip_bits`` and
    ``r = floor(2**k / s)`` (``s = 0`` gives ``(0, recip_bits)``), int64 arrays of ``s``'s
    shape. Negative ``s`` raises."""
    s = np.asarray(s, dtype=np.int64)
    if s.size and s.min() < 0:
        raise HwsimError("reciprocal of a negative number")
    shape, s = s.shape, s.ravel()
    k = np.maximum(bit_length(s) - 1, 0) + recip_bits
    small = k <= 62
    r = np.where(s > 0, (np.int64(1) << np.where(small, k, 0)) // np.maximum(s, 1), 0)
    for i in np.flatnonzero(~small):
        r[i] = (1 << int(k[i])) // int(s[i]) if s[i] else 0
    return r.astype(np.int64).reshape(shape), k.astype(np.int64).reshape(shape)
