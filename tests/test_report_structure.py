"""The report's shape: renderers that only render, no import loops (its modules' size,
like every module's, is held by tests/test_layout.py)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import harness.report

REPORT = Path(harness.report.__file__).parent


def _imports_from(module: Path) -> list[tuple[str, str]]:
    """(module imported from, name) for every ``from X import name`` in a file."""
    tree = ast.parse(module.read_text())
    return [
        ("." * node.level + (node.module or ""), alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    ]


def test_no_renderer_imports_another_renderers_names() -> None:
    for renderer, other in (("html.py", "markdown"), ("markdown.py", "html")):
        leaked = [
            (source, name)
            for source, name in _imports_from(REPORT / renderer)
            if source.endswith(other)
        ]
        assert leaked == [], f"{renderer} imports {leaked}"


def test_html_imports_no_private_name_from_any_report_module() -> None:
    private = [
        (source, name)
        for source, name in _imports_from(REPORT / "html.py")
        if source.startswith(".") and name.startswith("_")
    ]
    assert private == []


def _modules_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_harness_traces_does_not_import_the_report() -> None:
    loaded = _modules_after_import("harness.results.traces")
    assert "harness.results.profile_passes" in loaded
    assert not any(m.startswith("harness.report") for m in loaded)
