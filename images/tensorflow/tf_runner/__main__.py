"""``python -m tf_runner --spec FILE --data DIR --out DIR``: the TensorFlow runner."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness_contract.study.framework import Framework

FRAMEWORK = "tensorflow"


def _framework() -> Framework:
    # Imported lazily, so --help and a version error need no TensorFlow.
    from harness_contract.versions import check_versions

    check_versions(FRAMEWORK)
    from .runner import TFFramework

    return TFFramework()


def main(argv: list[str] | None = None) -> int:
    from harness_contract.entrypoint import main as run

    return run(_framework, argv, prog="python -m tf_runner")


if __name__ == "__main__":
    sys.exit(main())
