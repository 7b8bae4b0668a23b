"""Backends by name, created lazily so an unused one (and its SDK) is never imported."""

from __future__ import annotations

from harness_contract.errors import HarnessError

from .base import Backend, LaunchRequest, LaunchResult

BACKENDS = ("local",)


def get_backend(name: str) -> Backend:
    if name == "local":
        from .local import LocalBackend

        return LocalBackend()
    raise HarnessError(f"unknown backend '{name}'", f"use one of: {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Backend", "LaunchRequest", "LaunchResult", "get_backend"]
