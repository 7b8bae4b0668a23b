"""The base every spec section shares: unknown keys are errors, numbers given for a text
field stay text, every float must be finite; and the error a cross-field rule raises."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class SpecValueError(ValueError):
    """A rule across fields, with its fix: shown as is, not as pydantic's 'Value error'."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.fix = fix


class Section(BaseModel):
    # Unknown keys are errors: a typo must never silently fall back to a default.
    # Numbers given for a text field (`--set name=2024`) stay text. Every float, in any
    # section or tuple, must be finite: nan and inf are refused naming the field.
    model_config = ConfigDict(
        extra="forbid",
        validate_assignment=True,
        coerce_numbers_to_str=True,
        allow_inf_nan=False,
    )
