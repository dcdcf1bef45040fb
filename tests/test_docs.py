"""The docs are reference that cannot drift: short pages, no session history, and every path,
link and command they show is checked against the repository and the CLI."""

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from hwsim.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
FIGURES = sorted((ROOT / "docs" / "figures").glob("*.md"))
MAX_LINES = 210  # "about 200 lines", with a small margin

FENCE = re.compile(r"^```.*?^```", re.S | re.M)
SPAN = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
ISSUE = re.compile(r"\bissues?\s*#?\d+|(?<![\w&/])#\d+\b", re.I)
#: top-level entries a backticked path may start with (build/ and other outputs are not in git)
TOP = {p.name for p in ROOT.iterdir() if p.name not in {"build", ".venv"}
       and not p.name.startswith(".")}


def _ids(paths):
    return [str(p.relative_to(ROOT)) for p in paths]


def _prose(text: str) -> str:
    """The page without its code blocks and code spans."""
    return SPAN.sub("", FENCE.sub("", text))


def _repo_paths(text: str):
    """Backticked spans that name a file or folder of the repository: no spaces or
    placeholders, a ``/``, and a first component that is a top-level entry of the repo."""
    for span in SPAN.findall(FENCE.sub("", text)):
        span = span.strip().split("::")[0]  # a pytest node or symbol: its file
        if (" " in span or "/" not in span or any(c in span for c in "<>{}|…")
                or span.startswith(("/", "..", "http"))):
            continue
        if span.split("/")[0] in TOP:
            yield span


def _commands(text: str):
    """``hwsim …`` lines of the page's code blocks (a trailing ``# comment`` removed)."""
    for block in FENCE.findall(text):
        for line in block.splitlines()[1:-1]:
            line = line.strip().removeprefix("$ ").removeprefix(".venv/bin/")
            if line.startswith("hwsim "):
                yield re.split(r"\s+#\s", line, maxsplit=1)[0].strip()


@pytest.mark.parametrize("page", PAGES + FIGURES, ids=_ids(PAGES + FIGURES))
def test_page_is_short(page):
    n = len(page.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{n} lines; split the page or cut it to reference"


@pytest.mark.parametrize("page", PAGES + FIGURES, ids=_ids(PAGES + FIGURES))
def test_no_session_history(page):
    text = page.read_text(encoding="utf-8")
    assert "/tmp/" not in text
    hits = ISSUE.findall(_prose(text))
    assert not hits, f"issue numbers in the prose: {hits} (history goes to CHANGELOG.md)"


@pytest.mark.parametrize("page", PAGES + FIGURES, ids=_ids(PAGES + FIGURES))
def test_paths_exist(page):
    missing = []
    for span in _repo_paths(page.read_text(encoding="utf-8")):
        if any(c in span for c in "*?["):
            if not list(ROOT.glob(span)):
                missing.append(span)
        elif not (ROOT / span).exists():
            missing.append(span)
    assert not missing, f"paths that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES + FIGURES, ids=_ids(PAGES + FIGURES))
def test_links_resolve(page):
    broken = []
    for target in LINK.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        if target.startswith(("http://", "https://", "mailto:", "#")):
            continue
        if not (page.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert not broken, f"relative links that do not resolve: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_commands_parse(page):
    """Every ``hwsim`` command of a code block is one the CLI accepts (parsed, not run)."""
    parser = build_parser()
    for line in _commands(page.read_text(encoding="utf-8")):
        try:
            parser.parse_args(shlex.split(line)[1:])
        except SystemExit as e:  # --help exits 0; a parse error exits 2
            assert e.code == 0, f"`{line}` does not parse"


def _inline_commands(text: str):
    """The subcommand words of every inline ``hwsim …`` span: the leading lower-case words
    (``hwsim sim rmsnorm`` of ``hwsim sim rmsnorm --sim icarus``), up to an option, a
    placeholder or a path."""
    for span in SPAN.findall(FENCE.sub("", text)):
        words = span.split()
        if len(words) < 2 or words[0] != "hwsim":
            continue
        prefix = []
        for w in words[1:]:
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", w):
                break
            prefix.append(w)
        if prefix:
            yield "hwsim " + " ".join(prefix)


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_inline_commands_exist(page):
    """``hwsim sim KERNEL``, ``hwsim bench NAME``, … named in the prose are real commands."""
    parser = build_parser()
    bad = []
    for cmd in set(_inline_commands(page.read_text(encoding="utf-8"))):
        try:
            with contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()):
                parser.parse_args([*cmd.split()[1:], "--help"])
        except SystemExit as e:
            if e.code != 0:
                bad.append(cmd)
    assert not bad, f"commands that do not exist: {sorted(bad)}"


def test_readme_indexes_every_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = {t.split("#")[0] for t in LINK.findall(readme)}
    pages = {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}
    assert pages <= linked, f"pages missing from the README's index: {sorted(pages - linked)}"


def test_the_checks_catch_drift(tmp_path):
    """The helpers above find what they must (a page with every fault once)."""
    page = ("see issue #12 and #3, `hwsim/nope.py`, [x](nope.md)\n"
            "```\nhwsim bench no-such-bench --json  # a comment\n```\n"
            "`hwsim run MODEL` `build/run/x.json` ok #section\n")
    assert ISSUE.findall(_prose(page)) == ["issue #12", "#3"]
    assert list(_repo_paths(page)) == ["hwsim/nope.py"]
    assert LINK.findall(page) == ["nope.md"]
    assert list(_commands(page)) == ["hwsim bench no-such-bench --json"]
    assert list(_inline_commands(page)) == ["hwsim run"]
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["bench", "no-such-bench", "--json"])
    assert e.value.code == 2
