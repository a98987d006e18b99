"""Components named in a config: a built-in name, a name another package registers, or an import
path.

A setting that names a component (`world`, `isr.model`, `schedule.kind`) takes one of:

- a built-in name (`goals`, `paper`);
- a name that an installed package registers under the component's entry-point group
  (`internalize.worlds`, `internalize.isrs`, `internalize.schedules`; `internalize.experiments`
  for whole experiments, read by `experiments.registry`), e.g. in that package's
  `pyproject.toml`:

      [project.entry-points."internalize.worlds"]
      hazard = "mypackage.hazard:make_env"

- `package.module:attribute`, imported as it is (a module beside the working directory too).

`load` gives the object and `build` what calling it gives; each raises ValueError in one line
naming the component and why.
"""

import functools
import os
import sys
from collections.abc import Mapping
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any


@functools.cache
def registered(group: str) -> dict[str, str]:
    """{name: "module:attribute"} of the entry points of `group` that installed packages declare."""
    return {point.name: point.value for point in entry_points(group=group)}


def load(spec: str, what: str, group: str, built_in: Mapping[str, str]) -> Any:
    """The object that `spec` names (see the module's doc); `what` names the setting in errors."""
    target = built_in.get(spec) or registered(group).get(spec) or spec
    module_name, colon, attribute = target.partition(":")
    if not colon or not module_name or not attribute:
        names = sorted({*built_in, *registered(group)})
        raise ValueError(
            f"unknown {what} {spec!r}: give one of {names} or package.module:attribute"
        )
    if spec not in built_in and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # a module of the user's own, beside where they work
    try:
        found = import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"{what} {spec!r} cannot be loaded: {error}") from None
    except Exception as error:  # a plug-in whose module fails as it runs
        why = f"{type(error).__name__}: {error}"
        raise ValueError(f"{what} {spec!r} cannot be loaded: {why}") from None
    return found


def build(spec: str, what: str, group: str, built_in: Mapping[str, str], *args, **kwargs) -> Any:
    """What calling the object that `spec` names with `args` and `kwargs` gives (`load`); what
    the call raises becomes a ValueError that names the component."""
    make = load(spec, what, group, built_in)
    try:
        return make(*args, **kwargs)
    except Exception as error:  # the user's function, whatever it raises
        why = f"{type(error).__name__}: {error}"
        raise ValueError(f"{what} {spec!r} failed to build: {why}") from None
