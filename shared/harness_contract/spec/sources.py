"""Where a spec's raw values come from: the presets (``presets/*.toml``, each may name a
``base``), a user's TOML or JSON file, and ``section.key=value`` overrides."""

from __future__ import annotations

import copy
import json
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from harness_contract.errors import SpecError

PRESETS = ("paper", "quick", "smoke", "vit-smoke")


def preset_dict(name: str, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    if name not in PRESETS:
        raise SpecError(f"unknown preset '{name}'", f"use one of: {', '.join(PRESETS)}")
    text = resources.files("harness_contract.presets").joinpath(f"{name}.toml").read_text()
    return resolve_base(tomllib.loads(text), (*_seen, name))


def resolve_base(raw: dict[str, Any], seen: tuple[str, ...]) -> dict[str, Any]:
    base = raw.pop("base", None)
    if base is None:
        return raw
    if base in seen:
        raise SpecError(f"preset cycle through '{base}'", "remove the circular 'base' entry")
    return _deep_merge(preset_dict(base, seen), raw)


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_spec_file(path: Path) -> dict[str, Any]:
    if path.is_dir():
        raise SpecError(f"spec file {path} is a directory", "pass a .toml or .json spec file")
    if not path.is_file():
        raise SpecError(f"spec file {path} does not exist", "pass an existing .toml or .json file")
    try:
        text = path.read_text()
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"spec file {path} cannot be parsed ({exc})", "fix its syntax") from None
    if not isinstance(raw, dict):
        raise SpecError(f"spec file {path} is not a table/object", "write sections as keys")
    return raw


def parse_override(text: str) -> tuple[list[str], Any]:
    """``train.epochs=3`` -> (["train", "epochs"], 3). Values are JSON when they parse as JSON."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise SpecError(
            f"override '{text}' is not of the form section.key=value",
            "write it like --set train.epochs=3",
        )
    return key.split("."), _override_value(value.strip())


def _override_value(value: str) -> Any:
    """JSON when it parses; else a list of bare words (``[inductor, executorch]``, each
    item JSON or a word) or one word (``none``/``true``/``false`` as JSON would read them)."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        pass
    if value.startswith("[") and value.endswith("]"):
        return [_override_value(_unquoted(item)) for item in _list_items(value[1:-1])]
    return {"none": None, "null": None, "true": True, "false": False}.get(value.lower(), value)


def _list_items(text: str) -> list[str]:
    """Top-level comma-separated items (commas inside [] or {} stay); [] has none."""
    items, depth, current = [], 0, ""
    for char in text:
        depth += char in "[{"
        depth -= char in "]}"
        if char == "," and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += char
    items.append(current.strip())
    return [] if items == [""] else items


def _unquoted(item: str) -> str:
    """'inductor' (shell-style single quotes) as "inductor"."""
    if len(item) >= 2 and item[0] == item[-1] == "'":
        return json.dumps(item[1:-1])
    return item


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise SpecError(
                    f"override '{text}': '{part}' is not a section",
                    "override a field inside a section, e.g. train.epochs",
                )
            node = child
        node[path[-1]] = value
    return out
