"""Strict reading of the estimator's YAML files: every field known, present, typed and sourced.

An architecture or table file is a tree of mappings whose leaves are *parameters*::

    clock: {value: 1 GHz, status: published, source: "VitaLLM, arXiv 2605.00320"}

``value`` is a quantity with its unit (:mod:`hwsim.estimate.units`), an integer count, a ratio,
a boolean or a name, as the schema says; ``status`` is one of :data:`STATUSES` and ``source``
says where the number comes from (a paper, a data sheet, or why it is an assumption). A
``fitted`` parameter also names the published figure it was chosen to match (``fitted_to``).

A missing field, an unknown (misspelt) field, a negative or zero value, a unit of the wrong
dimension or an unknown unit raises :class:`~hwsim.errors.HwsimError` with one line naming the
field by its dotted path in the file.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from hwsim.errors import HwsimError

from . import units

__all__ = ["STATUSES", "Field", "Param", "known_names", "open_checked", "read_params",
           "read_yaml", "resolve_yaml"]

#: where a parameter's value comes from
STATUSES = ("published", "datasheet", "literature", "derived", "assumption", "fitted")


@dataclass(frozen=True)
class Field:
    """The schema of one parameter: its kind and its range.

    ``kind`` is a dimension of :data:`hwsim.estimate.units.DIMENSIONS`, or ``count`` (integer
    ≥ 1, or ≥ 0 with ``allow_zero``), ``ratio`` (float > 0, at most ``max`` when given),
    ``bool`` or ``name`` (a non-empty string).
    """

    kind: str
    allow_zero: bool = False
    max: float | None = None
    doc: str = ""


@dataclass(frozen=True)
class Param:
    """One parameter read from a file: its value in SI base units and where it came from."""

    path: str
    value: object
    status: str
    source: str
    text: str  # the value as written in the file
    fitted_to: str = ""


def known_names(folder: Path) -> list[str]:
    """The names of the YAML files in ``folder`` (stems, sorted)."""
    return sorted(p.stem for p in Path(folder).glob("*.yaml"))


def resolve_yaml(ref: str | Path, folder: Path, what: str) -> Path:
    """``ref`` as a file: a ``.yaml``/``.yml`` path as given, else the file of that name in
    ``folder``; an unknown name is one error listing the known ones."""
    path = Path(ref)
    if path.suffix in (".yaml", ".yml"):
        return path
    path = Path(folder) / f"{ref}.yaml"
    if not path.exists():
        raise HwsimError(f"unknown {what} {str(ref)!r}; known: {', '.join(known_names(folder))}")
    return path


def open_checked(ref: str | Path, folder: Path, known_as: str, what: str, top: set[str],
                 schema_id: str, kinds: dict) -> tuple[Path, dict]:
    """Resolve ``ref`` (:func:`resolve_yaml`), read it and check its header
    (:func:`check_header`): ``(path, data)``."""
    path = resolve_yaml(ref, folder, known_as)
    data = read_yaml(path, what)
    check_header(data, path.name, top, schema_id, kinds)
    return path, data


def read_yaml(path: Path, what: str) -> dict:
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise HwsimError(f"cannot read {what} file {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise HwsimError(f"cannot read {what} file {path}: not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise HwsimError(f"{path.name}:{where} is not valid YAML") from None
    if not isinstance(data, dict):
        raise HwsimError(f"{path.name}: a {what} file must be a mapping at the top level")
    return data


def check_header(data: dict, where: str, top: set[str], schema_id: str,
                 kinds: dict) -> None:
    """The fields every estimator YAML shares: exactly ``top``, the right schema id, a known kind,
    a ``params`` mapping. One clear error naming the field otherwise."""
    for key in data:
        if key not in top:
            raise HwsimError(f"{where}: unknown field {key!r}")
    for key in top:
        if key not in data:
            raise HwsimError(f"{where}: missing field {key!r}")
    if data["schema"] != schema_id:
        raise HwsimError(f"{where}: schema must be {schema_id!r}, not {data['schema']!r}")
    if data["kind"] not in kinds:
        raise HwsimError(f"{where}: kind must be 'asic' or 'fpga', not {data['kind']!r}")


def _flatten(tree: dict, prefix: str, out: dict, leaves: set[str]) -> None:
    for key, val in tree.items():
        path = f"{prefix}{key}"
        if path in leaves:
            out[path] = val
        elif isinstance(val, dict) and "value" not in val:
            _flatten(val, f"{path}.", out, leaves)
        else:
            out[path] = val


def _value(field: Field, raw, path: str):
    k = field.kind
    if k in units.DIMENSIONS:
        return units.parse(raw, k, path, allow_zero=field.allow_zero)
    if k == "count":
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise HwsimError(f"{path}: must be an integer count, not {raw!r}")
        if raw < 0 or (raw == 0 and not field.allow_zero):
            raise HwsimError(f"{path}: must be {'≥ 0' if field.allow_zero else '≥ 1'}, not {raw}")
        return raw
    if k == "ratio":
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise HwsimError(f"{path}: must be a number, not {raw!r}")
        if raw < 0 or (raw == 0 and not field.allow_zero):
            raise HwsimError(f"{path}: must be {'≥' if field.allow_zero else '>'} 0, not {raw}")
        if field.max is not None and raw > field.max:
            raise HwsimError(f"{path}: must be ≤ {field.max}, not {raw}")
        return float(raw)
    if k == "bool":
        if not isinstance(raw, bool):
            raise HwsimError(f"{path}: must be true or false, not {raw!r}")
        return raw
    if k == "name":
        if not isinstance(raw, str) or not raw.strip():
            raise HwsimError(f"{path}: must be a non-empty name, not {raw!r}")
        return raw
    raise AssertionError(k)


def read_params(tree: dict, schema: dict[str, Field], where: str) -> dict[str, Param]:
    """Check ``tree`` against ``schema`` (dotted path → :class:`Field`); return the parameters.

    ``where`` prefixes every error (the file's name).
    """
    flat: dict = {}
    _flatten(tree, "", flat, set(schema))
    for path in flat:
        if path not in schema:
            close = difflib.get_close_matches(path, list(schema), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise HwsimError(f"{where}: unknown field {path!r}{hint}")
    out = {}
    for path, field in schema.items():
        if path not in flat:
            raise HwsimError(f"{where}: missing field {path!r}")
        entry = flat[path]
        if not isinstance(entry, dict):
            raise HwsimError(f"{where}: {path} must be a mapping with value, status and source")
        extra = set(entry) - {"value", "status", "source", "fitted_to"}
        if extra:
            raise HwsimError(f"{where}: unknown field {path}.{sorted(extra)[0]}")
        for key in ("value", "status", "source"):
            if key not in entry:
                raise HwsimError(f"{where}: missing field {path}.{key}")
        status = entry["status"]
        if status not in STATUSES:
            raise HwsimError(f"{where}: {path}.status {status!r} is not one of "
                             f"{', '.join(STATUSES)}")
        source = entry["source"]
        if not isinstance(source, str) or not source.strip():
            raise HwsimError(f"{where}: {path}.source must say where the number comes from")
        fitted_to = entry.get("fitted_to", "")
        if status == "fitted" and not fitted_to:
            raise HwsimError(f"{where}: {path} is fitted but names no figure (fitted_to)")
        value = _value(field, entry["value"], f"{where}: {path}")
        out[path] = Param(path, value, status, source.strip(), str(entry["value"]),
                          str(fitted_to))
    return out
