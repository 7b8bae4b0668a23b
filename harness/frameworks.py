"""The frameworks the harness can run, by name. Adding one is one entry here plus its runner."""

from __future__ import annotations

from dataclasses import dataclass

from harness_contract.errors import HarnessError


@dataclass(frozen=True)
class FrameworkEntry:
    name: str
    runner_module: str  # run as `python -m <runner_module> --spec --data --out`
    install_hint: str


FRAMEWORKS: dict[str, FrameworkEntry] = {
    "pytorch": FrameworkEntry(
        name="pytorch",
        runner_module="torch_runner",
        install_hint="pip install -e '.[pytorch]'",
    ),
    "tensorflow": FrameworkEntry(
        name="tensorflow",
        runner_module="tf_runner",
        install_hint="pip install -e '.[tensorflow]'",
    ),
}


def get_framework(name: str) -> FrameworkEntry:
    try:
        return FRAMEWORKS[name.lower()]
    except KeyError:
        raise HarnessError(
            f"unknown framework '{name}'", f"use one of: {', '.join(FRAMEWORKS)}"
        ) from None


def parse_frameworks(text: str) -> list[FrameworkEntry]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise HarnessError("no framework given", f"use one or more of: {', '.join(FRAMEWORKS)}")
    return [get_framework(n) for n in dict.fromkeys(names)]
