"""The import graphs of ``hwsim/golden`` and ``rtl`` are acyclic, and both import only what the
design allows (``../shared/DESIGN.md``, "Which way the imports point").

The graph is read from the source with :mod:`ast`, so every import counts: module level,
function-local and under ``if TYPE_CHECKING:`` alike; relative imports are resolved.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def module_name(path: Path, root: Path) -> str:
    """``hwsim/golden/vitallm/ffn_in.py`` → ``hwsim.golden.vitallm.ffn_in``; a package's ``__init__.py`` → the
    package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str, root: Path) -> bool:
    base = root.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(path: Path, root: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in its body, as absolute dotted names
    (``from pkg import name`` counts as ``pkg.name`` where that is a module, else ``pkg``)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for a in node.names:
                sub = f"{source}.{a.name}"
                found.add(sub if _is_module(sub, root) else source)
    return found


def import_graph(folder: str, root: Path = ROOT) -> dict[str, set[str]]:
    """Module → the modules of the same folder it imports (its package-internal edges)."""
    files = sorted(root.joinpath(folder).rglob("*.py"))
    names = {module_name(f, root) for f in files}
    return {module_name(f, root): imports_of(f, root) & names for f in files}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, …, a]``, or ``None`` when it is acyclic."""
    state: dict[str, int] = {}          # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def project_imports(folder: str, root: Path = ROOT) -> dict[str, set[str]]:
    """Module → the modules of this project (its top-level packages) it imports."""
    tops = {p.name for p in root.iterdir() if (p / "__init__.py").is_file()}
    return {module_name(f, root): {m for m in imports_of(f, root) if m.split(".")[0] in tops}
            for f in sorted(root.joinpath(folder).rglob("*.py"))}


@pytest.mark.parametrize("folder", ["hwsim/golden", "rtl"])
def test_import_graph_is_acyclic(folder):
    graph = import_graph(folder)
    assert len(graph) > 5, f"no modules found under {folder}"
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle in {folder}: {' → '.join(cycle)}"


def test_golden_imports_only_qtype_and_errors():
    """The golden kernels import nothing of the project but QType and the error type."""
    allowed = {"quant.qtype", "hwsim.errors"}
    bad = {m: sorted(i for i in imps if i not in allowed and not i.startswith("hwsim.golden"))
           for m, imps in project_imports("hwsim/golden").items()}
    assert not {m: i for m, i in bad.items() if i}, bad


def test_rtl_never_imports_models_or_the_estimator():
    bad = {m: sorted(i for i in imps if i.split(".")[0] == "models"
                     or i == "hwsim.estimate" or i.startswith("hwsim.estimate."))
           for m, imps in project_imports("rtl").items()}
    assert not {m: i for m, i in bad.items() if i}, bad


def test_the_checks_see_hidden_imports(tmp_path):
    """A cycle closed only by a function-local or ``TYPE_CHECKING`` relative import is found,
    and so is a forbidden import inside a function."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\n"
                              "if TYPE_CHECKING:\n    from .c import X\n")
    (pkg / "c.py").write_text("def f():\n    from pkg import a\n    import models.x\n")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "__init__.py").write_text("")
    graph = import_graph("pkg", tmp_path)
    assert graph["pkg.b"] == {"pkg.c"} and graph["pkg.c"] == {"pkg.a"}
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]
    assert project_imports("pkg", tmp_path)["pkg.c"] == {"pkg.a", "models.x"}
    (pkg / "c.py").write_text("X = 1\n")
    assert find_cycle(import_graph("pkg", tmp_path)) is None


def test_golden_modules_are_short_or_say_why():
    """A golden module over 400 lines states at its top (in its docstring) why it is one."""
    long = {}
    for f in sorted(ROOT.joinpath("hwsim/golden").rglob("*.py")):
        text = f.read_text(encoding="utf-8")
        doc = ast.get_docstring(ast.parse(text)) or ""
        if text.count("\n") > 400 and "Over 400 lines" not in doc:
            long[module_name(f, ROOT)] = text.count("\n")
    assert not long, f"golden modules over 400 lines without a reason at their top: {long}"
