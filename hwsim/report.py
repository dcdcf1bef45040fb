"""Reports a person wants to read: one document model, rendered to Markdown and to HTML.

A :class:`Report` is a title and a list of blocks (headings, paragraphs, tables, figures, code).
``to_markdown()`` gives ``report.md`` (figures as relative links); ``to_html()`` gives a
self-contained ``report.html`` with every figure embedded as a base64 PNG, so the file can be
mailed or archived alone. :meth:`Report.write` writes both atomically.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

from hwsim.files import atomic_write_text

__all__ = ["Figure", "Report", "Table"]


@dataclass
class Table:
    headers: list[str]
    rows: list[list]
    caption: str = ""

    def _cells(self, row) -> list[str]:
        return [_fmt(v) for v in row]


@dataclass
class Figure:
    path: Path          # a PNG file
    caption: str


@dataclass
class Report:
    title: str
    blocks: list = field(default_factory=list)

    # -- building ---------------------------------------------------------------------------
    def heading(self, text: str, level: int = 2) -> Report:
        self.blocks.append(("h", level, text))
        return self

    def para(self, text: str) -> Report:
        self.blocks.append(("p", text))
        return self

    def table(self, headers, rows, caption: str = "") -> Report:
        self.blocks.append(("t", Table(list(headers), [list(r) for r in rows], caption)))
        return self

    def figure(self, path: Path, caption: str) -> Report:
        self.blocks.append(("f", Figure(Path(path), caption)))
        return self

    def code(self, text: str) -> Report:
        self.blocks.append(("c", text))
        return self

    # -- rendering --------------------------------------------------------------------------
    def to_markdown(self, relative_to: Path | None = None) -> str:
        out = [f"# {self.title}", ""]
        for b in self.blocks:
            kind = b[0]
            if kind == "h":
                out += [f"{'#' * b[1]} {b[2]}", ""]
            elif kind == "p":
                out += [b[1], ""]
            elif kind == "c":
                out += ["```", b[1].rstrip("\n"), "```", ""]
            elif kind == "t":
                t: Table = b[1]
                if t.caption:
                    out += [t.caption, ""]
                out.append("| " + " | ".join(t.headers) + " |")
                out.append("|" + "---|" * len(t.headers))
                out += ["| " + " | ".join(t._cells(r)) + " |" for r in t.rows]
                out.append("")
            elif kind == "f":
                f: Figure = b[1]
                p = f.path
                if relative_to is not None:
                    try:
                        p = f.path.resolve().relative_to(Path(relative_to).resolve())
                    except ValueError:
                        p = f.path
                out += [f"![{f.caption}]({p.as_posix()})", "", f"*{f.caption}*", ""]
        return "\n".join(out).rstrip() + "\n"

    def to_html(self) -> str:
        e = html.escape
        body = [f"<h1>{e(self.title)}</h1>"]
        for b in self.blocks:
            kind = b[0]
            if kind == "h":
                body.append(f"<h{b[1]}>{e(b[2])}</h{b[1]}>")
            elif kind == "p":
                body.append(f"<p>{_inline(b[1])}</p>")
            elif kind == "c":
                body.append(f"<pre>{e(b[1])}</pre>")
            elif kind == "t":
                t: Table = b[1]
                rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in t._cells(r))
                               + "</tr>" for r in t.rows)
                head = "".join(f"<th>{_inline(h)}</th>" for h in t.headers)
                cap = f"<caption>{_inline(t.caption)}</caption>" if t.caption else ""
                body.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody>"
                            "</table>")
            elif kind == "f":
                f: Figure = b[1]
                data = base64.b64encode(f.path.read_bytes()).decode()
                body.append(f'<figure><img alt="{e(f.caption)}" src="data:image/png;base64,'
                            f'{data}"><figcaption>{e(f.caption)}</figcaption></figure>')
        return _PAGE.format(title=e(self.title), body="\n".join(body))

    def write(self, folder: Path, stem: str = "report") -> dict[str, Path]:
        folder = Path(folder)
        md, page = folder / f"{stem}.md", folder / f"{stem}.html"
        atomic_write_text(md, self.to_markdown(relative_to=folder))
        atomic_write_text(page, self.to_html())
        return {"markdown": md, "html": page}


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v == 0 or 1e-3 <= abs(v) < 1e6:
            return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
        return f"{v:.3e}"
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10000 else str(v)
    return str(v)


def _inline(text: str) -> str:
    """Escape, then render `code` spans (the only inline markup reports use)."""
    parts = str(text).split("`")
    return "".join(f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p)
                   for i, p in enumerate(parts))


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 62rem; margin: 2rem auto; padding: 0 1rem;
       color: #1b1b1b; line-height: 1.45; }}
table {{ border-collapse: collapse; margin: 0.8rem 0 1.4rem; font-size: 0.92rem; }}
th, td {{ border: 1px solid #c9c9c9; padding: 0.3rem 0.6rem; text-align: left; }}
th {{ background: #f0f2f5; }}
tr:nth-child(even) td {{ background: #fafbfc; }}
caption {{ caption-side: top; text-align: left; font-weight: 600; padding-bottom: 0.3rem; }}
code, pre {{ font-family: ui-monospace, monospace; background: #f3f3f3; }}
pre {{ padding: 0.6rem; overflow-x: auto; }}
figure {{ margin: 1rem 0; }} img {{ max-width: 100%; }}
figcaption {{ font-size: 0.9rem; color: #555; }}
</style></head><body>
{body}
</body></html>
"""
