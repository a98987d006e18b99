"""An experiment's config by name: its defaults, a profile, a file and `KEY=VALUE` settings,
resolved (below every command that runs, sweeps, reports or renders an experiment).
"""

import dataclasses
import os
from typing import Any

from internalize.experiments import registry
from internalize.experiments.common import ExperimentConfig


def setting_names(name: str) -> set[str]:
    """The setting names of experiment `name`'s config."""
    return {field.name for field in dataclasses.fields(registry.get(name).config_class())}


def make_config(name: str, **settings: Any) -> ExperimentConfig:
    """The config of experiment `name` from settings (preset, seeds, first_seed, step counts,
    isr_threshold, ...); settings that the experiment does not have are an error. A `profile`
    (`experiments.profiles`) is laid over the preset's defaults, under the other settings."""
    from internalize import config as settings_module
    from internalize.experiments.profiles import profile_settings

    record = registry.get(name)
    settings = {**record.settings, **settings}
    known = setting_names(name)
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"{name} has no setting(s) {unknown}; known: {sorted(known)}")
    profile = settings.get("profile")
    if profile is None:
        return record.config_class()(**settings)
    layer = profile_settings(profile, name)
    base = record.config_class()(preset=settings.get("preset", "fast"), profile=profile)
    base = settings_module.update(base, layer)
    return dataclasses.replace(base, **settings)


def resolve_config(
    name: str,
    file: str | os.PathLike | None = None,
    options: dict[str, Any] | None = None,
    assignments: tuple[str, ...] | list[str] = (),
) -> ExperimentConfig:
    """The config of experiment `name`: its defaults, then the settings of `file` (TOML, or a
    run's config.json to rerun it), then `options` (settings by name, as the command line's
    own options give them), then `assignments` (`KEY=VALUE` texts, `--set`). The preset, from
    whichever of these gives it last, sets the defaults of the PPO and ISR settings; the
    profile, likewise, lays its settings over those defaults and under every explicit setting
    of the layers. A wrong key, type or value raises ValueError naming it."""
    from internalize import config as settings

    layers = [
        settings.load(file, type(make_config(name)), name) if file is not None else {},
        dict(options or {}),
        settings.parse_assignments(assignments),
    ]
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = _merge(merged, layer)
    preset, profile = str(merged.pop("preset", "fast")), merged.pop("profile", None)
    if profile is not None and str(profile).lower() == "none":  # `--set profile=none`
        profile = None
    base = make_config(name, preset=preset, profile=None if profile is None else str(profile))
    return settings.update(base, merged)


def _merge(base: dict, changes: dict) -> dict:
    """`base` with `changes` laid over it, nested mappings merged key by key."""
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
