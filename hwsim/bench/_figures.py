"""The figure tables of the docs: ``make docs-figures`` writes ``docs/figures/*.md``.

Each figure is one hwsim command that prints one JSON object (a ``hwsim bench … --json`` at
small, fast settings, ``hwsim sim … --json`` or ``hwsim estimate … --json``) and a renderer
that turns that object into markdown tables. Every file starts with a line naming the command
that measured it, so a page that links to ``docs/figures/NAME.md`` shows figures that came from
a command, never typed.

    python -m hwsim.bench._figures [-o docs/figures] [--from-json DIR] [--keep-json DIR] [NAME ...]

``--from-json DIR`` reads ``DIR/NAME.json`` instead of running the command (the JSON of an
earlier run, or of a longer run at other settings); ``--keep-json DIR`` keeps the JSON it
measured. The leading underscore keeps this module out of ``hwsim bench``'s list.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FIGURES", "Figure", "header", "main", "measure", "render", "write"]


@dataclass(frozen=True)
class Figure:
    """One generated figure file: ``docs/figures/<name>.md`` from ``hwsim <argv…>``."""

    name: str
    title: str
    argv: tuple[str, ...]
    tables: Callable[[dict], list[str]]

    @property
    def command(self) -> str:
        return "hwsim " + " ".join(self.argv)


def _num(v) -> str:
    """A measured number as the docs show it: integers whole, floats to 4 significant digits."""
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, int):
        return str(v)
    return f"{v:.4g}"


def _table(header: tuple[str, ...], rows: list[tuple]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def _estimate(r: dict) -> list[str]:
    out = []
    for point in r["points"]:
        val = _table(("figure", "published", "estimated", "error", "status"),
                     [(v["figure"], f"{_num(v['published'])} {v['unit']}",
                       _num(v["estimated"]), f"{v['error_pct']:+.1f} %", v["status"])
                      for v in point["validation"]])
        sens = point["sensitivity"]
        keys = [k for k in sens[0] if k not in ("parameter", "value")] if sens else []
        sens = _table(("parameter", "value", *(f"Δ {k}" for k in keys)),
                      [(s["parameter"], s["value"], *(f"{s[k]:+.1f} %" for k in keys))
                       for s in sens])
        out += [f"## {point['title']}", "",
                f"Model: {point['model_status']} — {point['model_source']}.", "",
                "### Published vs estimated", "", *val, "",
                "### Sensitivity (change of each estimate when one parameter moves)", "", *sens,
                ""]
    return out[:-1]


def _ternary_mvu(r: dict) -> list[str]:
    return _table(("figure", "value"), [
        ("configuration", f"rows={r['rows']} cols={r['cols']} lanes={r['lanes']}, "
                          f"{r['vectors']} vectors back to back"),
        ("cycles measured (Icarus)", r["measured_cycles"]),
        ("cycles by the golden formula", r["formula_cycles"]),
        ("ideal cycles (rows·cols·vectors / lanes)", r["ideal_cycles"]),
        ("utilization (ideal / measured)", _num(r["utilization"])),
        ("bit-exact on Icarus and Verilator", _num(r["bit_exact"])),
    ])


def _attention(r: dict) -> list[str]:
    runs = ", ".join(f"{k} {_num(v)}" for k, v in sorted(r["bit_exact"].items()))
    return _table(("figure", "value"), [
        ("configuration", f"head_dim={r['head_dim']} max_len={r['max_len']} lanes={r['lanes']} "
                          f"exp_lanes={r['exp_lanes']}"),
        ("decode cycles measured / formula", f"{r['cycles']} / {r['formula_cycles']}"),
        ("query cycles (query alone)", r["query_cycles"]),
        ("ideal cycles (2·M·d / lanes)", r["ideal_cycles"]),
        ("cycles / ideal (goal)", f"{_num(r['cycles_over_ideal'])} "
                                  f"(≤ {_num(r['goal_cycles_over_ideal'])})"),
        ("bit-exact, per simulator and multiplier style", runs),
        ("softmax max abs error vs float64 (bound)",
         f"{_num(r['softmax_max_abs_error'])} ({_num(r['softmax_error_bound'])})"),
    ])


def _airfm(r: dict) -> list[str]:
    c, w, g, h, x = r["cost"], r["cost"]["window"], r["cost"]["global"], r["head"], r["rtl"]
    return _table(("figure", "value"), [
        ("net", f"trained run ({r['variant']})" if r["trained"]
         else "untrained (no --run): cycles and costs do not depend on the weights"),
        ("head", f"head_dim={h['head_dim']} window tokens={h['max_len']} lanes={h['lanes']} "
                 f"exp_lanes={h['exp_lanes']}"),
        (f"RTL ({x['sim']}) == golden on one window", _num(x["bit_exact"])),
        ("window cycles measured / formula", f"{x['cycles']} / {x['formula_cycles']}"),
        ("tokens per window: window / global", f"{w['window_tokens']} / {g['window_tokens']}"),
        ("attention cycles per inference: window / global", f"{w['cycles']} / {g['cycles']}"),
        (f"latency at {c['clock_hz'] / 1e6:g} MHz (µs): window / global",
         f"{w['latency_us']:.1f} / {g['latency_us']:.1f}"),
        ("global / window: cycles", f"{c['ratio_cycles']:.2f}×"),
        ("global / window: QKᵀ+AV MACs", f"{c['ratio_mac']:.2f}×"),
        ("global / window: KV-cache bits", f"{c['ratio_kv_cache']:.2f}×"),
    ])


def _lif_array(r: dict) -> list[str]:
    def check(case):
        if case["timed"]:
            return "==" if case["cycles_match"] else "NO"
        return "≥ (stalls)" if case["cycles"] >= case["expected_cycles"] else "NO"

    return _table(("case", "bit-exact", "steps", "events", "spikes", "cycles", "formula",
                   "check"),
                  [(x["name"], _num(x["bit_exact"]), x["steps"], x["events"], x["spikes"],
                    x["cycles"], x["expected_cycles"], check(x)) for x in r["cases"]])


#: every generated figure, in the order ``make docs-figures`` measures them
FIGURES: dict[str, Figure] = {f.name: f for f in (
    Figure("estimate", "BitNet b1.58 3B on VitaLLM: estimate vs published silicon",
           ("estimate", "bitnet-3b", "--target", "vitallm", "--validate", "--json"), _estimate),
    Figure("silicon-kv260", "Ternary LLMs on the AMD KV260 (K26, DDR4): estimate vs published",
           ("estimate", "bitnet-700m", "--target", "xck26", "--validate", "--json"), _estimate),
    Figure("silicon-slim-llama", "Slim-Llama (28 nm ASIC): estimate vs published silicon",
           ("estimate", "bitnet-3b", "--target", "slim-llama", "--validate", "--json"),
           _estimate),
    Figure("ternary-mvu", "Ternary MVU: cycles and utilization",
           ("bench", "ternary-mvu", "--json", "--rows", "64", "--cols", "64", "--no-synth"),
           _ternary_mvu),
    Figure("attention", "Attention head: decode cycles, bit-exactness, softmax error",
           ("bench", "attention", "--json", "--no-synth", "--no-verilator",
            "--error-rows", "2000"), _attention),
    Figure("airfm", "AirFM-DDA: one window on the attention-head RTL, window vs global cost",
           ("bench", "airfm", "--json", "--sim", "icarus"), _airfm),
    Figure("lif-array", "LIF neuron array: cocotb cases on Icarus (kernel defaults)",
           ("sim", "lif-array", "--sim", "icarus", "--json"), _lif_array),
)}


def header(fig: Figure) -> str:
    """The first line of ``fig``'s file: which command measured it."""
    return f"<!-- generated by `make docs-figures` from `{fig.command}`; do not edit -->"


def render(fig: Figure, result: dict) -> str:
    """The markdown file of ``fig`` for the JSON object ``result`` of its command."""
    lines = [header(fig),
             f"# {fig.title}", "", f"Measured by `{fig.command}`.", "", *fig.tables(result)]
    return "\n".join(lines) + "\n"


def measure(fig: Figure) -> dict:
    """Run ``fig``'s command in this interpreter's environment and return its JSON object."""
    proc = subprocess.run([sys.executable, "-m", "hwsim.cli", *fig.argv], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"`{fig.command}` failed (exit {proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout)


def write(fig: Figure, result: dict, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{fig.name}.md"
    path.write_text(render(fig, result), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hwsim.bench._figures",
                                description="Write the docs' figure tables (docs/figures/*.md).")
    p.add_argument("names", nargs="*", metavar="NAME",
                   help=f"figures to write (default: all of {', '.join(FIGURES)})")
    p.add_argument("-o", "--out", type=Path, default=Path("docs/figures"), help="output folder")
    p.add_argument("--from-json", type=Path, default=None, metavar="DIR",
                   help="read DIR/NAME.json instead of running the commands")
    p.add_argument("--keep-json", type=Path, default=None, metavar="DIR",
                   help="also write the measured JSON to DIR/NAME.json")
    args = p.parse_args(argv)
    for name in args.names:
        if name not in FIGURES:
            p.error(f"unknown figure {name!r} (choose from {', '.join(FIGURES)})")
    for name in args.names or FIGURES:
        fig = FIGURES[name]
        if args.from_json is not None:
            result = json.loads((args.from_json / f"{name}.json").read_text(encoding="utf-8"))
        else:
            result = measure(fig)
            if args.keep_json is not None:
                args.keep_json.mkdir(parents=True, exist_ok=True)
                (args.keep_json / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n",
                                                             encoding="utf-8")
        print(write(fig, result, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
