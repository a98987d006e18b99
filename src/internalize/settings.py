"""What every frozen settings dataclass shares."""

import dataclasses
from typing import Any, TypeVar

Settings = TypeVar("Settings")


def replace_settings(settings: Settings, kind: str, changes: dict[str, Any]) -> Settings:
    """`dataclasses.replace`, with a ValueError naming any unknown field (and the known ones)."""
    known = {field.name for field in dataclasses.fields(settings)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ValueError(f"unknown {kind} setting(s) {unknown}; known: {sorted(known)}")
    return dataclasses.replace(settings, **changes)
