"""Reset options of the boulder world's adapters (Gymnasium and PettingZoo), checked."""

import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from internalize.envs.boulder import BoulderEnv, BoulderParams, BoulderState
from internalize.envs.layouts import border_mask
from internalize.envs.tree_layouts import check_tree_walls

POSITIONS = ("boulder", "partner", "goal", "learner")
RESET_OPTIONS = ("walls", *POSITIONS, "heading", "carrying")


def state_from_options(
    env: BoulderEnv,
    options: dict[str, Any] | None,
    rng: np.random.Generator,
    key: jax.Array,
    reset: Callable,
    place: Callable,
    params: BoulderParams,
    strict: bool = True,
) -> BoulderState:
    """The state a reset starts from.

    No options: a random layout (`reset`). `walls` alone: that layout, checked to be a tree,
    with boulder, partner, goal and learner drawn by the task's rules (`place`). `walls` with
    all four positions (and optionally `heading`, default random, and `carrying`, default
    False): exactly that state (`BoulderEnv.state_from_layout` checks it). Raises ValueError
    for unknown options (a warning instead, and they are ignored, unless `strict`: PettingZoo's
    API test passes an unknown one), positions without walls, or only some of the four positions.
    """
    options = dict(options or {})
    unknown = set(options) - set(RESET_OPTIONS)
    if unknown:
        message = f"unknown reset option(s) {sorted(unknown)}; known: {', '.join(RESET_OPTIONS)}"
        if strict:
            raise ValueError(message)
        warnings.warn(message + " (ignored)", stacklevel=3)
        options = {name: value for name, value in options.items() if name in RESET_OPTIONS}
    if not options:
        return reset(key, params)
    given = [name for name in POSITIONS if name in options]
    if "walls" not in options:
        raise ValueError("reset options need 'walls' (the 7 interior wall cells)")
    if not given:
        mask = check_tree_walls(options["walls"], env.size) | border_mask(env.size)
        state = place(key, jnp.asarray(mask), jnp.int32(0))
        if "heading" in options or "carrying" in options:
            raise ValueError("'heading' and 'carrying' need all four positions as well")
        return state
    missing = [name for name in POSITIONS if name not in options]
    if missing:
        raise ValueError(
            f"reset options give {', '.join(given)} but not {', '.join(missing)}: give all of "
            f"{', '.join(POSITIONS)} or none"
        )
    heading = options.get("heading", int(rng.integers(4)))
    return env.state_from_layout(
        options["walls"],
        boulder=options["boulder"],
        partner=options["partner"],
        goal=options["goal"],
        learner=options["learner"],
        heading=heading,
        carrying=options.get("carrying", False),
    )
