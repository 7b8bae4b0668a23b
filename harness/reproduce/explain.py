"""Why bits may differ: what the two runs recorded about where they ran, field by field
(the CPU and its ISA, threads, versions, device, determinism switches, image)."""

from __future__ import annotations

from dataclasses import dataclass

from harness_contract.metrics import Provenance

# The recorded fields that decide bit-exactness, in the order a reader checks them.
FIELDS = (
    "cpu_model",
    "cpu_flags",
    "threads",
    "framework_versions",
    "device",
    "gpu",
    "cuda",
    "cudnn",
    "determinism",
    "image",
    "python",
    "harness_version",
)


@dataclass(frozen=True)
class ContextDiff:
    field: str
    old: str
    new: str

    def describe(self) -> str:
        return f"{self.field}: {self.old} -> {self.new}"


def context_differences(old: Provenance, new: Provenance) -> list[ContextDiff]:
    """Every deciding field whose recorded value differs between the two runs."""
    out = []
    for name in FIELDS:
        before, after = getattr(old, name), getattr(new, name)
        if before == after:
            continue
        if isinstance(before, list) and isinstance(after, list):
            out.append(_set_diff(name, before, after))
        elif isinstance(before, dict) and isinstance(after, dict):
            out.append(_dict_diff(name, before, after))
        else:
            out.append(ContextDiff(name, _show(before), _show(after)))
    return out


def _show(value: object) -> str:
    if value is None:
        return "none"
    image = getattr(value, "id", None)
    if image is not None:  # an ImageIdentity: its registry digest, else its local id
        return str(getattr(value, "digest", None) or image)
    return str(value)


def _set_diff(name: str, before: list, after: list) -> ContextDiff:
    gone, added = sorted(set(before) - set(after)), sorted(set(after) - set(before))
    # Only what one run had and the other lacks: the shared flags say nothing.
    return ContextDiff(name, " ".join(gone) or "(no others)", " ".join(added) or "(no others)")


def _dict_diff(name: str, before: dict, after: dict) -> ContextDiff:
    keys = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    return ContextDiff(
        name,
        ", ".join(f"{k}={before.get(k, 'unset')}" for k in keys),
        ", ".join(f"{k}={after.get(k, 'unset')}" for k in keys),
    )
