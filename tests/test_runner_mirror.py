"""The two runners mirror each other: where a module plays the same role in both, its public
functions have the same names and arguments (read from the source: no framework import)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNNERS = {
    "pytorch": ROOT / "images" / "pytorch" / "torch_runner",
    "tensorflow": ROOT / "images" / "tensorflow" / "tf_runner",
}


def _signatures(framework: str, module: str) -> dict[str, list[str]]:
    """ "name" or "Class.method" -> its argument names, for every public callable."""
    tree = ast.parse((RUNNERS[framework] / f"{module}.py").read_text())
    found: dict[str, list[str]] = {}

    def args(fn: ast.FunctionDef) -> list[str]:
        a = fn.args
        return [x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs] if x.arg != "self"]

    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            found[node.name] = args(node)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and (
                    not item.name.startswith("_") or item.name in ("__init__", "__call__")
                ):
                    found[f"{node.name}.{item.name}"] = args(item)
    return found


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("model", "build_model"),
        ("train", "SGDTrainer.__init__"),
        ("train", "SGDTrainer.step"),
        ("train", "SGDTrainer.end_epoch"),
        ("tensors", "Normalizer.__init__"),
        ("tensors", "Normalizer.__call__"),
        ("profile", "run_profile"),
        # profile.op_samples reads each profiler's own record (torch events, xplane files).
        # TensorFlow's int8 model is a .tflite: its op list lives with LiteRT.
        ("quantize|litert", "quantized_ops"),
    ],
)
def test_a_shared_role_has_one_signature(module: str, name: str) -> None:
    torch_module, _, tf_module = module.partition("|")
    torch_side = _signatures("pytorch", torch_module).get(name)
    tf_side = _signatures("tensorflow", tf_module or torch_module).get(name)
    assert torch_side is not None and tf_side is not None, f"{module}.{name} missing on one side"
    assert torch_side == tf_side


def test_quantization_steps_take_the_same_leading_arguments() -> None:
    """PyTorch's steps are methods of its two flows; TensorFlow's are module functions that
    also take the interpreter's thread count."""
    torch_side = _signatures("pytorch", "quantize")
    tf_side = _signatures("tensorflow", "quantize")
    for step in ("ptq", "prepare_qat", "convert_qat"):
        for flow in ("PT2EFlow", "FXFlow"):
            torch_args = torch_side[f"{flow}.{step}"]
            assert tf_side[step][: len(torch_args)] == torch_args, (flow, step)


def test_both_entry_points_check_versions_through_the_shared_helper() -> None:
    for framework, root in RUNNERS.items():
        text = (root / "__main__.py").read_text()
        assert "check_versions(FRAMEWORK)" in text, framework
        assert f'FRAMEWORK = "{framework}"' in text
