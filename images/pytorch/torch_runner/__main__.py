"""``python -m torch_runner --spec FILE --data DIR --out DIR``: the PyTorch runner."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness_contract.study.framework import Framework

FRAMEWORK = "pytorch"


def _framework() -> Framework:
    # Imported lazily, so --help and a version error need no PyTorch.
    from harness_contract.versions import check_versions

    check_versions(FRAMEWORK)
    from .runner import TorchFramework

    return TorchFramework()


def main(argv: list[str] | None = None) -> int:
    from harness_contract.entrypoint import main as run

    return run(_framework, argv, prog="python -m torch_runner")


if __name__ == "__main__":
    sys.exit(main())
