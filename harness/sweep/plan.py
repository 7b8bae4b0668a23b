"""A sweep spec and the points it expands to, validated before anything runs.

A sweep spec names a base (a preset and/or a spec file), the frameworks, the seeds (a
count or a list), fixed overrides for every point, and a grid of overrides
(``key -> [values]``). Every grid cell x seed is checked with the contract's own spec
loader, so an unknown key or a bad value is named before a single point starts.
"""

from __future__ import annotations

import itertools
import json
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.cli.options import DEFAULT_PRESET
from harness_contract.errors import HarnessError, SpecError
from harness_contract.frameworks import ALL_FRAMEWORKS, FRAMEWORKS, parse_frameworks
from harness_contract.spec import build_spec
from harness_contract.spec.sources import parse_override

SWEEP_KEYS = ("preset", "spec", "frameworks", "seeds", "set", "grid")
# Keys the sweep itself sets on every point: a grid over them would fight it.
RESERVED = {"seed": "use seeds = N (or --seeds)", "measure.threads": "use --threads / --parallel"}
SPEC_FIX = "see docs/sweep.md for the sweep spec's keys"


@dataclass(frozen=True)
class SweepSpec:
    """What to run: recorded as sweep.json so ``--resume`` reruns exactly this."""

    preset: str | None = DEFAULT_PRESET
    spec_file: str | None = None  # absolute, so a resume from elsewhere finds it
    frameworks: list[str] = field(default_factory=lambda: list(FRAMEWORKS))
    seeds: list[int] = field(default_factory=lambda: [0])
    sets: list[str] = field(default_factory=list)  # on every point
    grid: dict[str, list[Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SweepSpec:
        return cls(**raw)

    def cells(self) -> list[tuple[tuple[str, Any], ...]]:
        """Every combination of grid values, in the grid's order ([()] without a grid)."""
        keys = list(self.grid)
        return [
            tuple(zip(keys, combo, strict=True)) for combo in itertools.product(*self.grid.values())
        ]


@dataclass(frozen=True)
class Point:
    """One run: a framework, a grid cell and a seed."""

    name: str
    framework: str
    seed: int
    cell: tuple[tuple[str, Any], ...]

    @property
    def cell_label(self) -> str:
        return cell_label(self.cell)

    def overrides(self) -> list[str]:
        """The cell's --set lines, then the seed (threads are the executor's)."""
        return [override(k, v) for k, v in self.cell] + [f"seed={self.seed}"]


def cell_label(cell: tuple[tuple[str, Any], ...] | list) -> str:
    return ", ".join(f"{k}={_show(v)}" for k, v in cell) or "base"


def override(key: str, value: Any) -> str:
    """key=value as --set reads it back to the same value (JSON for everything)."""
    return f"{key}={json.dumps(value)}"


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


# ---------------------------------------------------------------- building


def read_sweep_file(path: Path) -> dict[str, Any]:
    """The TOML sweep spec as a dict of known keys (unknown ones are named)."""
    if not path.is_file():
        raise HarnessError(f"sweep spec {path} does not exist", "pass an existing .toml file")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise HarnessError(
            f"sweep spec {path} cannot be parsed ({exc})", "fix its syntax"
        ) from None
    unknown = sorted(set(raw) - set(SWEEP_KEYS))
    if unknown:
        raise HarnessError(
            f"unknown sweep spec key '{unknown[0]}' in {path}",
            f"use {', '.join(SWEEP_KEYS)}; spec overrides go under [grid] or in set = [...]",
        )
    if "spec" in raw:  # relative to the sweep file, like a spec file's own paths
        raw["spec"] = str((path.parent / str(raw["spec"])).resolve())
    return raw


def build_sweep(
    file: Path | None = None,
    preset: str | None = None,
    spec_file: Path | None = None,
    frameworks: str | None = None,
    seeds: str | None = None,
    sets: list[str] | None = None,
    grid: list[str] | None = None,
) -> SweepSpec:
    """The sweep file (if any) with the CLI's shorthands on top."""
    raw = read_sweep_file(file) if file is not None else {}
    chosen_spec = spec_file.resolve() if spec_file is not None else raw.get("spec")
    chosen_preset = preset or raw.get("preset") or (None if chosen_spec else DEFAULT_PRESET)
    names = frameworks or _framework_text(raw.get("frameworks", ALL_FRAMEWORKS))
    parsed_grid = _file_grid(raw.get("grid", {}))
    for text in grid or []:
        key, values = parse_grid_option(text)
        parsed_grid[key] = values
    for key, values in parsed_grid.items():
        _no_repeated_values(key, values)
    return SweepSpec(
        preset=chosen_preset,
        spec_file=str(chosen_spec) if chosen_spec else None,
        frameworks=[fw.name for fw in parse_frameworks(names)],
        seeds=parse_seeds(seeds if seeds is not None else raw.get("seeds", 1)),
        sets=[*_string_list(raw.get("set", []), "set"), *(sets or [])],
        grid=parsed_grid,
    )


def _framework_text(value: Any) -> str:
    return ",".join(value) if isinstance(value, list) else str(value)


def _string_list(value: Any, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise HarnessError(
            f"sweep spec '{key}' must be a list of strings", 'e.g. set = ["train.epochs=3"]'
        )
    return list(value)


def parse_seeds(value: Any) -> list[int]:
    """A count (3 -> seeds 0, 1, 2) or a list ("0,5,7" or [0, 5, 7])."""
    if isinstance(value, str):
        text = value.strip()
        try:  # "5" is a count, "0,5,7" a list
            value = int(text) if "," not in text else [int(p) for p in text.split(",") if p.strip()]
        except ValueError:
            raise HarnessError(
                f"seeds '{text}' is not a count or a list of integers",
                "e.g. --seeds 5 or --seeds 0,1,2",
            ) from None
    if isinstance(value, bool):
        value = None
    if isinstance(value, int):
        if value < 1:
            raise HarnessError(f"seeds = {value} runs nothing", "give a count of at least 1")
        return list(range(value))
    if (
        isinstance(value, list)
        and value
        and all(isinstance(s, int) and not isinstance(s, bool) for s in value)
    ):
        if len(set(value)) != len(value):
            raise HarnessError(f"seeds {value} repeats a seed", "list each seed once")
        if any(s < 0 or s >= 2**32 for s in value):
            raise HarnessError(
                f"seeds {value} holds a seed outside 0..2^32-1", "use seeds in that range"
            )
        return list(value)
    raise HarnessError(
        f"seeds {value!r} is not a count or a list of integers",
        "e.g. seeds = 5 or seeds = [0, 1, 2]",
    )


def parse_grid_option(text: str) -> tuple[str, list[Any]]:
    """``ptq.calibration_samples=128,1024`` -> (key, [128, 1024]); commas inside [] stay."""
    key, sep, rest = text.partition("=")
    key = key.strip()
    if not sep or not key or not rest.strip():
        raise HarnessError(
            f"--grid '{text}' is not KEY=V1,V2",
            "write it like --grid ptq.calibration_samples=128,1024",
        )
    return key, [parse_override(f"{key}={part}")[1] for part in _split_top_level(rest)]


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "[{"
        depth -= char in "]}"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts]


def _file_grid(raw: Any) -> dict[str, list[Any]]:
    if not isinstance(raw, dict):
        raise HarnessError(
            "sweep spec 'grid' must be a table",
            'e.g. [grid] "ptq.calibration_samples" = [128, 1024]',
        )
    grid: dict[str, list[Any]] = {}
    for key, values in _flatten(raw).items():
        if not isinstance(values, list) or not values:
            raise HarnessError(
                f"grid key '{key}' must list its values",
                f'write "{key}" = [v1, v2] (a single value goes in set = [...])',
            )
        grid[key] = values
    return grid


def _no_repeated_values(key: str, values: list[Any]) -> None:
    """A value listed twice would run one cell twice under one name (and be counted as
    two): refused, as a repeated seed is."""
    seen: set[str] = set()
    for value in values:
        shown = json.dumps(value, sort_keys=True)
        if shown in seen:
            raise HarnessError(
                f"grid key '{key}' lists {_show(value)} more than once ({override(key, values)})",
                "list each value once",
            )
        seen.add(shown)


def _flatten(raw: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """[grid.ptq] calibration_samples = [...] and "ptq.calibration_samples" = [...] alike."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


# ---------------------------------------------------------------- points and checks


def applies(key: str, framework: str) -> bool:
    """A grid key applies to every framework unless it sits in another one's section
    (``pytorch.quant_flow`` leaves a TensorFlow run unchanged)."""
    section = key.partition(".")[0]
    return section == framework or section not in FRAMEWORKS


def project(cell: tuple[tuple[str, Any], ...], framework: str) -> tuple[tuple[str, Any], ...]:
    """The part of a grid cell that changes this framework's run."""
    return tuple((k, v) for k, v in cell if applies(k, framework))


def served_cells(sweep: SweepSpec, point: Point) -> list[str]:
    """The labels of every grid cell this point's run stands for: its own, and for a
    framework a key does not apply to, each cell that differs only in that key."""
    served = [c for c in sweep.cells() if project(c, point.framework) == tuple(point.cell)]
    return list(dict.fromkeys(cell_label(c) for c in served)) or [point.cell_label]


def expand(sweep: SweepSpec) -> list[Point]:
    """Every framework x cell x seed, with unique, filesystem-safe names; a framework runs
    once per distinct projection of the cells (a pytorch.* key does not multiply the
    TensorFlow runs, which would repeat one run under one seed)."""
    labels = _key_labels(list(sweep.grid))
    points = []
    seen: set[tuple[str, tuple[tuple[str, Any], ...], int]] = set()
    for full in sweep.cells():
        for seed in sweep.seeds:
            for framework in sweep.frameworks:
                cell = project(full, framework)
                if (framework, cell, seed) in seen:
                    continue
                seen.add((framework, cell, seed))
                parts = [framework, *(f"{labels[k]}={_safe(v)}" for k, v in cell), f"seed{seed}"]
                points.append(Point("-".join(parts), framework, seed, cell))
    names = [p.name for p in points]
    if len(set(names)) != len(names):  # values that differ only in unsafe characters
        points = [Point(f"{p.name}-{i}", p.framework, p.seed, p.cell) for i, p in enumerate(points)]
    return points


def _key_labels(keys: list[str]) -> dict[str, str]:
    """The last part of each key, or the whole key where two share a last part."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {
        k: (short if last.count(short) == 1 else k.replace(".", "_"))
        for k, short in zip(keys, last, strict=True)
    }


def _safe(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9.+_]", "_", _show(value)).strip("_") or "_"


def validate(sweep: SweepSpec, threads: int | None) -> None:
    """Build every point's spec with the contract's loader; the first bad key or value is
    named with the grid entry that brought it. Nothing has started yet."""
    base = [*sweep.sets] + ([f"measure.threads={threads}"] if threads else [])
    for key in sweep.grid:
        if key in RESERVED:
            raise HarnessError(f"grid key '{key}' is set by the sweep itself", RESERVED[key])
    for text in sweep.sets:
        if text.partition("=")[0].strip() in RESERVED:
            key = text.partition("=")[0].strip()
            raise HarnessError(f"set '{text}' is set by the sweep itself", RESERVED[key])
    _check("the sweep's base spec", sweep, base)
    for key, values in sweep.grid.items():
        for value in values:
            _check(f"grid value {override(key, value)}", sweep, [*base, override(key, value)])
    for cell in sweep.cells():
        for seed in sweep.seeds:
            cell_sets = [override(k, v) for k, v in cell]
            _check(
                f"grid cell {cell_label(cell)}, seed {seed}",
                sweep,
                [*base, *cell_sets, f"seed={seed}"],
            )


def _check(what: str, sweep: SweepSpec, sets: list[str]) -> None:
    spec_file = Path(sweep.spec_file) if sweep.spec_file else None
    try:
        build_spec(sweep.preset, spec_file, sets)
    except SpecError as exc:
        raise SpecError(f"{what}: {exc.problem}", exc.fix) from None
