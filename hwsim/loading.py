"""Checked reading of checkpoints, run folders and their metadata.

Every loader of a file hwsim wrote earlier (a checkpoint, a run folder, a sweep's cache) reads
through these functions, so that a missing, truncated, renamed or hand-edited file gives one
line naming the file and what is wrong, never a traceback and never a model that silently
runs on freshly initialized weights:

* :func:`read_json` and :func:`check_meta`: a JSON object, checked against a schema of
  ``key → rule`` (:func:`integer`, :func:`number`, :func:`text`, :data:`BOOL`, :func:`list_of`,
  :func:`maybe`, a nested ``dict`` schema, or :func:`fields_of` a config dataclass);
* :func:`read_safetensors` and :func:`check_state`: tensors checked against what the model
  expects — no tensor missing, none unknown, every shape equal, floats where floats are
  expected (integers of the same dtype where integers are), every float finite;
* :func:`read_npz`: arrays without pickles, with the names, kinds and finiteness checked.

Nothing is ever unpickled: tensors come from safetensors or ``.npz`` with
``allow_pickle=False``, metadata from JSON. Numpy only at import; torch is used when the
tensors are torch tensors.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hwsim.errors import HwsimError

__all__ = ["BOOL", "MAX_JSON_BYTES", "Rule", "build", "check_meta", "check_state",
           "expected_state", "fields_of", "integer", "list_of", "load_strict", "load_weights",
           "maybe", "number", "read_json", "read_npz", "read_safetensors", "text"]


#: the largest metadata file :func:`read_json` reads (hwsim writes a few kB)
MAX_JSON_BYTES = 16 << 20


# ---- metadata ----------------------------------------------------------------------------
class _Bad(Exception):
    def __init__(self, path: str, msg: str):
        super().__init__(path, msg)
        self.path, self.msg = path, msg


def _short(v: Any) -> str:
    s = json.dumps(v, default=str) if not isinstance(v, float) else repr(v)
    return s if len(s) <= 40 else s[:37] + "…"


@dataclasses.dataclass(frozen=True)
class Rule:
    """A metadata value's rule: ``what`` it must be (``"a positive integer"``) and ``ok``."""

    what: str
    ok: Callable[[Any], bool]
    optional: bool = False   # the key may be absent (or null)

    def check(self, value: Any, path: str) -> None:
        if self.optional and value is None:
            return
        if not self.ok(value):
            raise _Bad(path, f"must be {self.what}, not {_short(value)}")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:  # an integer beyond any float
        return False


def integer(lo: int | None = None, hi: int | None = None) -> Rule:
    """An integer (never a bool) in ``lo … hi`` (``None``: unbounded)."""
    what = ("a positive integer" if lo == 1 and hi is None else
            "a non-negative integer" if lo == 0 and hi is None else
            f"an integer {lo} … {hi}" if lo is not None and hi is not None else
            f"an integer ≥ {lo}" if lo is not None else
            f"an integer ≤ {hi}" if hi is not None else "an integer")
    return Rule(what, lambda v: _is_int(v) and (lo is None or v >= lo)
                and (hi is None or v <= hi))


def number(lo: float | None = None, hi: float | None = None, *,
           positive: bool = False) -> Rule:
    """A finite number (int or float, never a bool) in ``lo … hi``; ``positive``: > 0."""
    what = ("a positive number" if positive else
            f"a number {lo:g} … {hi:g}" if lo is not None and hi is not None else
            f"a number ≥ {lo:g}" if lo is not None else "a finite number")
    return Rule(what, lambda v: _is_num(v) and (not positive or v > 0)
                and (lo is None or v >= lo) and (hi is None or v <= hi))


def text(*choices: str) -> Rule:
    """A string; with ``choices``, one of them."""
    if choices:
        return Rule("one of " + ", ".join(map(repr, choices)), lambda v: v in choices
                    and isinstance(v, str))
    return Rule("a string", lambda v: isinstance(v, str))


#: ``true`` or ``false``
BOOL = Rule("true or false", lambda v: isinstance(v, bool))


def list_of(rule: Rule, min_len: int = 0, max_len: int | None = None) -> Rule:
    """A JSON list whose every item follows ``rule``, ``min_len`` … ``max_len`` long."""
    size = f"{min_len} or more" if max_len is None else f"{min_len} … {max_len}"
    return Rule(f"a list of {size} items, each {rule.what}",
                lambda v: isinstance(v, list) and len(v) >= min_len
                and (max_len is None or len(v) <= max_len)
                and all(rule.ok(x) for x in v))


class _Optional(dict):
    """A nested schema whose key may be absent or ``null``."""


def maybe(rule):
    """``rule`` (a :class:`Rule` or a nested schema), or the key absent, or ``null``."""
    if isinstance(rule, Mapping):
        return _Optional(rule)
    return dataclasses.replace(rule, optional=True)


def _optional(rule) -> bool:
    return isinstance(rule, _Optional) or (isinstance(rule, Rule) and rule.optional)


def _check(value: Any, rule, path: str) -> None:
    if isinstance(rule, _Optional) and value is None:
        return
    if isinstance(rule, Mapping):
        if not isinstance(value, dict):
            raise _Bad(path, f"must be a JSON object, not {_short(value)}")
        for key, sub in rule.items():
            p = f"{path}.{key}" if path else key
            if key not in value:
                if _optional(sub):
                    continue
                raise _Bad(p, "is missing")
            _check(value[key], sub, p)
    else:
        rule.check(value, path)


class _Fields:
    """The fields of a config dataclass: every key known, the required ones present, each of
    the type its annotation names (int, float, str, bool, ``X | None``)."""

    def __init__(self, cls, bounds: Mapping[str, Rule], complete: bool = False):
        self.cls = cls
        hints = typing.get_type_hints(cls)
        self.rules: dict[str, Rule] = {}
        self.required = set()
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            if complete or (f.default is dataclasses.MISSING
                            and f.default_factory is dataclasses.MISSING):
                self.required.add(f.name)
            rule = bounds.get(f.name) or _rule_of(hints[f.name])
            if rule is not None:
                self.rules[f.name] = rule

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise _Bad(path, f"must be a JSON object, not {_short(value)}")
        for key in value:
            if not isinstance(key, str) or key not in {f.name for f in
                                                     dataclasses.fields(self.cls)}:
                raise _Bad(f"{path}.{key}" if path else str(key),
                           f"is not a field of {self.cls.__name__}")
        for key in sorted(self.required - set(value)):
            raise _Bad(f"{path}.{key}" if path else key, "is missing")
        for key, rule in self.rules.items():
            if key in value:
                rule.check(value[key], f"{path}.{key}" if path else key)


def _rule_of(hint) -> Rule | None:
    args = typing.get_args(hint)
    if type(None) in args:  # X | None
        rest = [a for a in args if a is not type(None)]
        inner = _rule_of(rest[0]) if len(rest) == 1 else None
        return maybe(inner) if inner is not None else None
    return {int: integer(), float: number(), str: text(), bool: BOOL}.get(hint)


def fields_of(cls, *, complete: bool = False, **bounds: Rule) -> _Fields:
    """A rule for a dict that builds config dataclass ``cls``; ``bounds`` override the rule
    of a field (e.g. ``hidden=integer(1, 65536)``); ``complete``: every field must be given,
    even those with a default. Build it with :func:`build`."""
    return _Fields(cls, bounds, complete)


def check_meta(meta: Any, schema: Mapping[str, Any], where: str | Path) -> dict:
    """Check ``meta`` against ``schema`` (key → :class:`Rule`, nested ``dict`` schema or
    :func:`fields_of`); keys the schema does not name are allowed. Returns ``meta``; raises
    :class:`HwsimError` ``"<where>: <key.path> must be …, not …"`` (or ``is missing``)."""
    if not isinstance(meta, dict):
        raise HwsimError(f"{where} must hold a JSON object, not {type(meta).__name__}")
    try:
        _check(meta, dict(schema), "")
    except _Bad as e:
        raise HwsimError(f"{where}: {e.path} {e.msg}") from None
    return meta


def build(cls, d: dict, where: str | Path, key: str):
    """``cls(**d)`` for a dict already checked with :func:`fields_of`; the dataclass's own
    validation error comes back as one line naming ``where`` and ``key``."""
    try:
        _Fields(cls, {}).check(d, key)
        return cls(**d)
    except _Bad as e:
        raise HwsimError(f"{where}: {e.path} {e.msg}") from None
    except HwsimError as e:
        raise HwsimError(f"{where}: {key}: {e}") from None
    except (TypeError, ValueError) as e:
        raise HwsimError(f"{where}: {key} does not describe a {cls.__name__} ({e})") from None


def read_json(path: Path, what: str = "file") -> dict:
    """The JSON object in ``path``; one line if it is absent, unreadable, not JSON or not an
    object."""
    path = Path(path)
    if not path.is_file():
        raise HwsimError(f"{what} {path} does not exist")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise HwsimError(f"{path} is {path.stat().st_size} bytes, more than metadata can be "
                         f"({MAX_JSON_BYTES} bytes)")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise HwsimError(f"{path} cannot be read ({type(e).__name__})") from None
    except json.JSONDecodeError as e:
        raise HwsimError(f"{path} is not valid JSON ({e.msg}, line {e.lineno})") from None
    except RecursionError:
        raise HwsimError(f"{path} is nested too deeply to be metadata") from None
    if not isinstance(data, dict):
        raise HwsimError(f"{path} must hold a JSON object, not {type(data).__name__}")
    return data


# ---- tensors -----------------------------------------------------------------------------
def read_safetensors(path: Path, what: str = "checkpoint", framework: str = "pt", *,
                     kind: str = "") -> tuple[dict[str, Any], dict[str, str]]:
    """All tensors of a safetensors file and its header metadata (``{}`` if none).

    ``framework``: ``"pt"`` (torch tensors) or ``"np"`` (numpy arrays). A missing, empty,
    truncated or corrupt file raises one line naming it (``"PATH is not KIND: not a readable
    safetensors file (…)"`` with ``kind``)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise HwsimError(f"{what} {path} does not exist")
    try:
        with safe_open(str(path), framework) as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (no iterator)
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        said = f"not {kind}: not a readable" if kind else "not a readable"
        raise HwsimError(f"{path} is {said} safetensors file ({first})") from None
    return tensors, meta


def _is_float(dtype) -> bool:
    if hasattr(dtype, "is_floating_point"):  # torch.dtype
        return bool(dtype.is_floating_point)
    return bool(np.issubdtype(np.dtype(dtype), np.floating))


def _dtype_name(dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _finite(v) -> tuple[bool, bool]:
    """(no NaN, no infinity) of a torch tensor or numpy array."""
    if hasattr(v, "isnan"):  # torch
        return not bool(v.isnan().any()), not bool(v.isinf().any())
    a = np.asarray(v)
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.complexfloating)):
        return True, True
    return not bool(np.isnan(a).any()), not bool(np.isinf(a).any())


def _names(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def check_state(state: Mapping[str, Any], expected: Mapping[str, Any],
                where: str | Path, *, extra: bool = False) -> None:
    """Check loaded tensors ``state`` against ``expected`` (a model's ``state_dict()``, or any
    name → tensor/array with ``shape`` and ``dtype``).

    Refused, each with one line naming ``where`` and the tensor: a missing name (the first
    three and the count), an unknown name, another shape, a non-float where a float is expected
    (or another dtype where an integer or bool is), a NaN or an infinity in a float tensor.
    ``extra``: names beyond ``expected`` are left to the model's strict ``load_state_dict``
    (Brevitas quantizers take the scales they calibrated, which a fresh model lacks); their
    float values must still be finite."""
    missing = [k for k in expected if k not in state]
    if missing:
        raise HwsimError(f"{where}: missing tensor {_names(missing)} ({len(missing)} of "
                         f"{len(expected)} missing)")
    unknown = sorted(k for k in state if k not in expected)
    if unknown and not extra:
        raise HwsimError(f"{where}: unknown tensor name {_names(unknown)} (not in the "
                         "model)")
    for k in unknown:
        v = state[k]
        no_nan, no_inf = _finite(v) if _is_float(v.dtype) else (True, True)
        if not no_nan or not no_inf:
            raise HwsimError(f"{where}: tensor {k!r} holds "
                             f"{'NaN' if not no_nan else 'infinity'}")
    for k, want in expected.items():
        v = state[k]
        if tuple(v.shape) != tuple(want.shape):
            raise HwsimError(f"{where}: tensor {k!r} has shape {tuple(v.shape)}, the model "
                             f"expects {tuple(want.shape)}")
        if _is_float(want.dtype):
            if not _is_float(v.dtype):
                raise HwsimError(f"{where}: tensor {k!r} has dtype {_dtype_name(v.dtype)}, "
                                 "the model expects floats")
            no_nan, no_inf = _finite(v)
            if not no_nan or not no_inf:
                raise HwsimError(f"{where}: tensor {k!r} holds "
                                 f"{'NaN' if not no_nan else 'infinity'}")
        elif _dtype_name(v.dtype) != _dtype_name(want.dtype):
            raise HwsimError(f"{where}: tensor {k!r} has dtype {_dtype_name(v.dtype)}, the "
                             f"model expects {_dtype_name(want.dtype)}")


def expected_state(make: Callable[[], Any]) -> dict[str, Any]:
    """``make()``'s ``state_dict()``, built on torch's ``meta`` device where the model allows
    it, so that metadata describing a huge model is refused by :func:`check_state` before any
    memory is allocated for it."""
    import torch

    try:
        with torch.device("meta"):
            return dict(make().state_dict())
    except (RuntimeError, NotImplementedError, TypeError):
        return dict(make().state_dict())


def load_weights(make: Callable[[], Any], path: Path, what: str = "checkpoint"):
    """``make()`` (a zero-argument model factory) with the tensors of the safetensors file
    ``path``, checked by :func:`check_state` against the model (built on the ``meta`` device
    first where it can be, so nothing large is allocated for a file that does not fit)."""
    tensors, _ = read_safetensors(path, what)
    check_state(tensors, expected_state(make), path, extra=True)
    model = make()
    load_strict(model, tensors, path)
    return model


def load_strict(model, tensors: Mapping[str, Any], where: str | Path) -> None:
    """``model.load_state_dict(tensors)`` (strict); what torch refuses comes back as one line
    naming ``where`` and the first tensor concerned."""
    import re

    try:
        model.load_state_dict(tensors)
    except RuntimeError as e:
        msg = str(e)
        unexpected = re.search(r"Unexpected key\(s\) in state_dict: ([^\n]*)", msg)
        size = re.search(r"size mismatch for ([^:\n]+): ([^\n]*)", msg)
        missing = re.search(r"Missing key\(s\) in state_dict: ([^\n]*)", msg)
        if missing:  # a calibrated scale the model knows it needs
            names = re.findall(r'"([^"]+)"', missing.group(1))
            raise HwsimError(f"{where}: missing tensor {_names(names)}") from None
        if unexpected:
            names = re.findall(r'"([^"]+)"', unexpected.group(1))
            raise HwsimError(f"{where}: unknown tensor name {_names(names)} (not in the "
                             "model)") from None
        if size:
            raise HwsimError(f"{where}: tensor {size.group(1)!r}: {size.group(2)}") from None
        lines = [ln.strip() for ln in msg.splitlines() if ln.strip()]
        raise HwsimError(f"{where}: tensors do not fit the model "
                         f"({lines[-1] if lines else type(e).__name__})") from None


def read_npz(path: Path, expected: Mapping[str, str], what: str = "file") -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` (never unpickled) named in ``expected``: name → kind, one of
    ``"int"``, ``"float"``, ``"complex"`` (floats and complex values must be finite)."""
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise HwsimError(f"{what} {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in expected if k not in z.files]
            if missing:
                raise HwsimError(f"{path}: array {_names(missing)} missing")
            out = {k: z[k] for k in expected}
    except HwsimError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise HwsimError(f"{path} is not a readable .npz file ({first})") from None
    kinds = {"int": np.integer, "float": np.floating, "complex": np.complexfloating}
    for k, kind in expected.items():
        a = out[k]
        if not np.issubdtype(a.dtype, kinds[kind]):
            raise HwsimError(f"{path}: array {k!r} has dtype {a.dtype}, expected {kind}")
        no_nan, no_inf = _finite(a)
        if not no_nan or not no_inf:
            raise HwsimError(f"{path}: array {k!r} holds {'NaN' if not no_nan else 'infinity'}")
    return out
