"""A digest of the harness code a process would run: the host packages, the shared
contract and both runners, as installed where it is computed. The sweep's driver puts
its own in every point; a Ray node whose code differs refuses the point before running
anything, naming both digests (a node with another harness version would otherwise
measure something else under the same sweep)."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path

PACKAGES = ("harness", "harness_contract", "torch_runner", "tf_runner")


@functools.cache
def code_digest(packages: tuple[str, ...] = PACKAGES) -> str:
    """sha256 over every .py file of ``packages`` (path and bytes, in a fixed order); a
    package that is not installed counts as absent. Located with find_spec: nothing is
    imported, so no framework loads."""
    h = hashlib.sha256()
    for name in packages:
        spec = importlib.util.find_spec(name)
        roots = list(spec.submodule_search_locations or []) if spec else []
        if not roots:
            h.update(f"{name}: absent\n".encode())
            continue
        root = Path(roots[0])
        for path in sorted(root.rglob("*.py")):
            h.update(f"{name}/{path.relative_to(root).as_posix()}\n".encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]
