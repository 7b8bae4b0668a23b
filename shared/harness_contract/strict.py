"""The strict pydantic base of every metrics.json piece: unknown keys are errors.

Its own module so that schema pieces kept apart from metrics.py (layers/error.py) and
metrics.py itself share one base without importing each other."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
