"""A spec that does not validate, said in one line: the key, what was given, and the fix
(and the file the key was written in)."""

from __future__ import annotations

from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from harness_contract.spec.base import SpecValueError


def in_file(
    source: Path | None, own: dict[str, Any] | None, loc: tuple[str, ...], raw: dict[str, Any]
) -> str:
    """The words ' in <file>' when the key at ``loc`` was written in that file."""
    if source is None or (not loc and own is not None):  # a rule across keys: whose?
        return ""
    node: Any = raw if own is None else own
    for part in loc:
        if not isinstance(node, dict) or part not in node:
            return ""
        node = node[part]
    return f" in {source}"


def bool_for_number(
    model: type[BaseModel], raw: Any, loc: tuple[str, ...]
) -> tuple[tuple[str, ...], Any] | None:
    """The first field that takes only numbers but was given true/false (which pydantic
    would read as 1/0), with the value given; None when there is none."""
    if not isinstance(raw, dict):
        return None
    for key, value in raw.items():
        field = model.model_fields.get(key)
        if field is None:
            continue  # an unknown key: validation names it
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found = bool_for_number(annotation, value, (*loc, key))
            if found is not None:
                return found
        elif _numbers_only(annotation) and (
            isinstance(value, bool)
            or (isinstance(value, list | tuple) and any(isinstance(v, bool) for v in value))
        ):
            return (*loc, key), value
    return None


def _numbers_only(annotation: Any) -> bool:
    """int, float, an optional one, or a list or tuple of them."""
    if get_origin(annotation) is Annotated:
        return _numbers_only(get_args(annotation)[0])
    if annotation in (int, float):
        return True
    args = [a for a in get_args(annotation) if a is not type(None) and a is not Ellipsis]
    if get_origin(annotation) in (list, tuple, Union, UnionType) and args:
        return all(_numbers_only(a) for a in args)
    return False


def explain(exc: ValidationError) -> tuple[str, str]:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "spec"
    if first["type"] == "extra_forbidden":
        return f"unknown spec key '{where}'", "check the spelling against docs/spec.md"
    rule = first.get("ctx", {}).get("error")
    if isinstance(rule, SpecValueError):
        return f"invalid spec: {rule}", rule.fix
    given = first.get("input")
    shown = "" if isinstance(given, dict) else f" (got {given!r})"
    fix = "see docs/spec.md for allowed values"
    if first["type"] == "list_type" and isinstance(given, str):  # one word for a list
        fix = f"write a list, e.g. {where}=[{given}] ([] for none); {fix}"
    return (
        f"invalid spec value for '{where}': {first['msg'].removeprefix('Value error, ')}{shown}",
        fix,
    )
