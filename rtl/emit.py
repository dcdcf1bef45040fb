"""Verilog emission of hwsim components, with a JSON manifest beside each module.

The Verilog runs unmodified on Icarus (any ``-g`` generation), Verilator and Yosys; the
manifest states the whole interface — ports with width, direction and meaning, the streams and
their payload layouts, clock, reset, the kernel's numeric contract, latency and initiation
interval, the elaboration parameters — so a tool downstream (cocotb runner, FPGA flow, a user's
own testbench or SoC) needs nothing but the two files. ``docs/rtl-interface.md`` documents every
field (:data:`MANIFEST_VERSION`).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import re
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import data, wiring

from hwsim.files import staged_dir
from quant.qtype import QType

__all__ = ["MANIFEST_VERSION", "describe", "emit", "formats", "layout_of", "manifest_of", "member_docs",
           "port_list", "streams", "to_verilog"]

#: Version of the manifest's schema (docs/rtl-interface.md); raised when a field changes meaning.
MANIFEST_VERSION = 1

#: Clock and reset of every Amaranth ``sync`` domain as emitted here.
CLOCK = {"port": "clk", "edge": "rising"}
RESET = {"port": "rst", "polarity": "active-high", "kind": "synchronous", "min_cycles": 1,
         "effect": "every register returns to its init value on a rising clk edge with rst "
                   "high; after reset every output valid is 0 and every stream is idle"}
HANDSHAKE = ("valid/ready (amaranth.lib.stream): a beat transfers on a rising clk edge where "
             "valid and ready are both 1; a source keeps valid and payload steady until the beat "
             "transfers; ready may depend combinationally on valid")

# Yosys's Verilog backend gives a module's ``always @*`` blocks a dummy register initialized in
# its declaration, read by every block, so that each runs once at time 0. Simulators that apply
# declaration initializers before processes start (Icarus in its SystemVerilog generations,
# -g2009/-g2012, which cocotb uses) never deliver that event, and comb outputs that depend only
# on state constant through reset (an FSM's ``ready``) stay X (amaranth issue #594).
_TIME0_DECL = re.compile(
    r"^( *)reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+ ) = 0;$", re.M)
_TIME0_USE = re.compile(r"if \((\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+ )\) begin end")


def _time0_portable(text: str) -> str:
    """Declare the time-0 trigger as a constant net instead of an initialized register.

    A net driven by a constant changes from X to its value by an ordinary update event at time
    0, which reaches every ``always @*`` block waiting on it, in every Icarus generation (the
    register's declaration initializer is applied silently under ``-g2009``/``-g2012``).
    Verilator evaluates all logic at time 0 and Yosys reads a constant wire, so both take the
    file as it is; unlike an ``initial`` with ``#0`` it needs no ``--timing``/``--no-timing``
    choice on Verilator.
    """
    fixed, n = _TIME0_DECL.subn(
        r"\1// time-0 trigger of this module's always @* blocks (a constant net, so that its "
        r"X->0 event reaches them on any simulator)\n\1wire \2 = 1'b0;", text)
    declared = set(m.group(2) for m in _TIME0_DECL.finditer(text))
    used = set(_TIME0_USE.findall(text))
    if not used <= declared or (used and not n):
        raise RuntimeError("rtl.emit: Yosys's Verilog no longer declares its time-0 trigger as "
                           "`reg NAME = 0;`; update rtl.emit._TIME0_DECL")
    return fixed


_ZERO_WIDTH = re.compile(r"^ *wire \[-1:0\] (\\\S+ |\w+);\n", re.M)


def _drop_unread_zero_width(text: str) -> str:
    """Remove the declarations of zero-width signals that nothing reads.

    Yosys writes an Amaranth signal of width 0 (a group index when there is one group) as
    ``wire [-1:0] name;`` — two bits in Verilog, an ascending range to Verilator (ASCRANGE).
    One that appears nowhere else in its module carries nothing and goes.
    """
    modules = re.split(r"(?<=\nendmodule\n)", text)
    for i, module in enumerate(modules):
        for m in reversed(list(_ZERO_WIDTH.finditer(module))):
            name = m.group(1)
            token = re.escape(name) if name.startswith("\\") else rf"(?<![\w$\\]){name}(?![\w$])"
            if len(re.findall(token, module)) == 1:
                module = module[:m.start()] + module[m.end():]
        modules[i] = module
    return "".join(modules)


def to_verilog(component: wiring.Component, name: str) -> str:
    """The component as portable Verilog: Amaranth's Yosys backend, time-0 trigger portable,
    unread zero-width declarations removed."""
    return _drop_unread_zero_width(
        _time0_portable(verilog.convert(component, name=name, emit_src=False)))


def layout_of(shape) -> dict:
    """A payload shape as JSON: integer, array (element 0 in the low bits) or struct."""
    if isinstance(shape, data.ArrayLayout):
        elem = layout_of(shape.elem_shape)
        return {"kind": "array", "width": shape.size, "count": shape.length,
                "elem_width": elem["width"], "elem": elem,
                "packing": "element i at bits [i*elem_width, (i+1)*elem_width): element 0 in "
                           "the low bits"}
    if isinstance(shape, data.Layout):
        return {"kind": "struct", "width": shape.size,
                "fields": [{"name": str(name), "offset": field.offset, **layout_of(field.shape)}
                           for name, field in shape]}
    s = Shape.cast(shape)
    return {"kind": "int", "width": s.width, "signed": s.signed}


#: an entry of a ``Members`` section starts at the section's indent with its names
_ENTRY = re.compile(r"^(\w+(?:, \w+)*) :(?: |$)")
#: further members declared in the same entry, after a ``;`` or ``,``
_MORE = re.compile(r"[,;] +(\w+(?:, \w+)*) : ``")
#: a declaration ``names : ``type```` (its text is no description)
_DECL = re.compile(r"(?:^|[,;] +)\w+(?:, \w+)* : (?:``[^`]*``)?")
#: a member described by reference: ``as :class:`mod.Cls``` or ``as ``name`` of :class:`mod.Cls```
_REF = re.compile(r"^as (?:``(\w+)`` of )?:class:`([\w.]+)`(.*)$")


def _names(group: str) -> list[str]:
    return [n.strip() for n in group.split(",")]


def _class_docs(cls: type) -> dict[str, str | None]:
    """Each member's description in ``cls``'s ``Members`` section, None where it has none."""
    lines = (inspect.getdoc(cls) or "").splitlines()
    try:
        start = next(i for i, ln in enumerate(lines) if ln.strip() == "Members") + 2
    except StopIteration:
        return {}
    entries: list[list[str]] = []
    for ln in lines[start:]:
        if ln.strip() and not ln.startswith(" "):
            if not _ENTRY.match(ln):
                break  # the next section
            entries.append([ln])
        elif ln.strip() and entries:
            entries[-1].append(ln)
    docs: dict[str, str | None] = {}
    for entry in entries:
        # the declaration runs on while a ``type`` is open, a separator ends the line or the
        # next line declares further members
        n_decl = 1
        while n_decl < len(entry) and (
                " ".join(entry[:n_decl]).count("``") % 2
                or entry[n_decl - 1].rstrip().endswith((";", ","))
                or _MORE.search(entry[n_decl])):
            n_decl += 1
        head = " ".join(ln.strip() for ln in entry[:n_decl])
        body = " ".join(ln.strip() for ln in entry[n_decl:])
        rest = _DECL.sub("", head).strip(" :;,")
        text = body or (rest if re.search(r"[A-Za-z]", rest) else None)
        names = _names(_ENTRY.match(head).group(1))
        names += [n for g in _MORE.findall(head) for n in _names(g)]
        for name in names:
            docs[name] = _resolve(name, text)
    return docs


def _resolve(name: str, text: str | None) -> str | None:
    """A description ``as :class:`X``` (optionally ``as ``other`` of :class:`X```, then a
    remark) is the member's description in class ``X``, the remark appended."""
    m = _REF.match(text or "")
    if not m:
        return text
    module, _, cls = m.group(2).rpartition(".")
    ref = _class_docs(getattr(importlib.import_module(module), cls)).get(m.group(1) or name)
    if ref is None:
        return None
    remark = m.group(3).strip(" :;,")
    return f"{ref} {remark}" if remark else ref


def member_docs(component: wiring.Component) -> dict[str, str]:
    """Each member's meaning from the numpydoc ``Members`` section of the class docstring.

    An entry is a line ``name : ``type`` `` at the section's indent (several members may share
    it, as ``a, b : ``type`` `` or separated by ``,`` or ``;``; its types may run on over
    indented lines) and the indented description below it, or text after the declarations on
    the entry's own lines. A description ``as :class:`mod.Cls``` (or ``as ``other`` of
    :class:`mod.Cls```) is that class's description of the member. A member with no
    description is left out (:func:`port_list` says so).
    """
    return {k: v for k, v in _class_docs(type(component)).items() if v}


def _value_shape(member, value):
    return member.shape if member.is_port else Shape.cast(len(value))


def streams(component: wiring.Component) -> list[dict]:
    """The component's valid/ready streams: direction of data, port names and payload layout."""
    found: dict[str, dict] = {}
    for path, member, value in component.signature.flatten(component):
        if len(path) != 2 or path[1] not in ("payload", "valid", "ready"):
            continue
        s = found.setdefault(str(path[0]), {"name": str(path[0])})
        s[str(path[1])] = "__".join(map(str, path))
        if path[1] == "payload":
            s["dir"] = "in" if member.flow == wiring.In else "out"
            s["layout"] = layout_of(_value_shape(member, value))
    return [s for s in found.values() if {"payload", "valid", "ready"} <= s.keys()]


def port_list(component: wiring.Component) -> list[dict]:
    """Ports as Verilog sees them: clk and rst first, then the signature's members, each with
    its width, direction, signedness, stream role and meaning."""
    docs = member_docs(component)
    cls = type(component)
    undocumented = f"not described; see {cls.__module__}.{cls.__qualname__}"
    ports = [{"name": "clk", "dir": "in", "width": 1, "signed": False, "role": "clock",
              "meaning": "clock; everything happens on its rising edge"},
             {"name": "rst", "dir": "in", "width": 1, "signed": False, "role": "reset",
              "meaning": "synchronous active-high reset"}]
    for path, member, value in component.signature.flatten(component):
        name = "__".join(str(p) for p in path)
        shape = Shape.cast(_value_shape(member, value))
        width = len(value.as_value() if hasattr(value, "as_value") else value)
        entry = {"name": name, "dir": "in" if member.flow == wiring.In else "out",
                 "width": width, "signed": shape.signed}
        top = str(path[0])
        doc = docs.get(top, undocumented)
        if len(path) == 2 and path[1] in ("payload", "valid", "ready"):
            entry["stream"] = top
            entry["role"] = str(path[1])
            entry["meaning"] = {"payload": f"payload of stream {top}: {doc}",
                                "valid": f"stream {top}: the payload is valid",
                                "ready": f"stream {top}: the sink accepts the beat"}[path[1]]
        else:
            entry["role"] = "signal"
            entry["meaning"] = doc
        ports.append(entry)
    return ports


def formats(component: wiring.Component) -> dict[str, dict]:
    """Every number format (:class:`quant.qtype.QType`) among the component's parameters:
    width, fractional bits, signedness, rounding and overflow modes."""
    p = getattr(component, "params", None)
    if not dataclasses.is_dataclass(p):
        return {}
    return {f.name: v.to_dict() for f in dataclasses.fields(p)
            if isinstance(v := getattr(p, f.name), QType)}


def manifest_of(component: wiring.Component, name: str, manifest: dict) -> dict:
    """The full manifest: the generic interface facts, then the kernel's own entries."""
    return {"manifest_version": MANIFEST_VERSION, "schema": "docs/rtl-interface.md",
            "top": name, "verilog": f"{name}.v", "clock": CLOCK, "reset": RESET,
            "handshake": HANDSHAKE, "ports": port_list(component),
            "streams": streams(component), "formats": formats(component), **manifest}


def _layout_text(layout: dict) -> str:
    if layout["kind"] == "array":
        return f"{layout['count']}×{_layout_text(layout['elem'])}"
    if layout["kind"] == "struct":
        return "{" + ", ".join(f"{f['name']}: {_layout_text(f)}" for f in layout["fields"]) + "}"
    return f"{'int' if layout['signed'] else 'uint'}{layout['width']}"


def describe(manifest: dict) -> str:
    """The interface of a manifest in a few lines (what ``hwsim rtl emit`` prints)."""
    r = manifest["reset"]
    lines = [f"{manifest['top']}: clock {manifest['clock']['port']} ({manifest['clock']['edge']} "
             f"edge), reset {r['port']} ({r['polarity']}, {r['kind']})"]
    for d in ("in", "out"):
        found = [f"{s['name']} [{s['layout']['width']}: {_layout_text(s['layout'])}]"
                 for s in manifest["streams"] if s["dir"] == d]
        if found:
            lines.append(f"  streams {d}: " + ", ".join(found))
    for key in ("latency", "interval"):
        if key in manifest:
            lines.append(f"  {key}: {manifest[key]['function']} = {manifest[key]['cycles']} cycles")
    return "\n".join(lines)


def emit(component: wiring.Component, name: str, out_dir: Path, manifest: dict) -> dict[str, Path]:
    """Write ``<name>.v`` and ``<name>.json`` into ``out_dir`` atomically; return their paths.

    ``manifest`` carries kernel-specific entries (parameters, numeric contract, evaluated cycle
    counts, latency and initiation interval); the interface facts (ports, streams, clock, reset,
    handshake, schema version), top-level name and file names are added here.
    """
    text = to_verilog(component, name)
    full = manifest_of(component, name, manifest)
    out_dir = Path(out_dir)
    with staged_dir(out_dir) as stage:
        (stage / f"{name}.v").write_text(text)
        (stage / f"{name}.json").write_text(json.dumps(full, indent=2) + "\n")
    return {"verilog": out_dir / f"{name}.v", "manifest": out_dir / f"{name}.json"}
