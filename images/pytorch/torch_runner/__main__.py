"""``python -m torch_runner --spec FILE --data DIR --out DIR``: the PyTorch runner."""

from __future__ import annotations

import sys


def _framework():
    from .runner import TorchFramework

    return TorchFramework()


def main(argv: list[str] | None = None) -> int:
    from harness_contract.entrypoint import main as run

    try:
        import torch  # noqa: F401
    except ImportError:
        print(
            "error: PyTorch is not installed in this environment; "
            "install it with: pip install -e '.[pytorch]' (torch 2.13.0, torchao 0.18.0)",
            file=sys.stderr,
        )
        return 2
    return run(_framework, argv, prog="python -m torch_runner")


if __name__ == "__main__":
    sys.exit(main())
