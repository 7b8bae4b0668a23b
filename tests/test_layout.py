"""The house's shape (issue 19): every module sits in a package named for its role, the
packages import one another without a loop, and no module grows past 400 lines. Read
from the source alone, so it runs where neither framework is installed."""

from __future__ import annotations

import ast
import graphlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Each package's folder and its import name.
PACKAGES = {
    "harness": ROOT / "harness",
    "harness_contract": ROOT / "shared" / "harness_contract",
    "torch_runner": ROOT / "images" / "pytorch" / "torch_runner",
    "tf_runner": ROOT / "images" / "tensorflow" / "tf_runner",
}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    """Every module by its dotted name (a package by its own name, from __init__.py)."""
    found = {}
    for top, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = [top, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_time_nodes(tree: ast.Module) -> list[ast.stmt]:
    """The statements that run on import: the module body and its if/try blocks, not
    function bodies (a lazy import) nor ``if TYPE_CHECKING:``."""
    out, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If):
            if not _is_type_checking(node):
                todo += node.body + node.orelse
        elif isinstance(node, ast.Try):
            todo += node.body + node.orelse + node.finalbody
            todo += [s for h in node.handlers for s in h.body]
        else:
            out.append(node)
    return out


def _imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports when it is imported, with the packages
    Python initializes on the way to each."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in _import_time_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets.add(base)
            targets |= {f"{base}.{alias.name}" for alias in node.names}
    edges = set()
    for target in targets:
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if prefix in known and prefix != name and not name.startswith(prefix + "."):
                edges.add(prefix)
    return edges


def test_no_module_is_over_400_lines() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_the_packages_import_one_another_without_a_loop() -> None:
    known = _modules()
    graph = {name: _imported(name, path, known) for name, path in known.items()}
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        raise AssertionError(f"import loop: {' -> '.join(exc.args[1])}") from None


def test_every_top_level_module_is_named_in_the_readme_layout() -> None:
    """Only a handful of entry modules sit outside a role package; the README names each."""
    layout = (ROOT / "README.md").read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"[\w.]+\.py", layout))
    for top in ("harness", "harness_contract"):
        loose = {p.name for p in PACKAGES[top].glob("*.py")} - {"__init__.py"}
        assert loose - named == set(), f"{top}: not in the README's layout"
