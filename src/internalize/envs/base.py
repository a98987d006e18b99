"""The environment protocol: what learners, ISRs, rendering, adapters and experiments need.

An environment is a frozen dataclass of static settings (those that fix array shapes) whose
methods are pure, jittable functions; everything that may differ between vmapped environments
lives in a params pytree (`make_params`). It has:

- `obs_shape`, (height, width, channels): observations are uint8 (or float32) arrays of this
  shape, which learners scale by `obs_scale`; `num_actions`: discrete actions 0..A-1;
- `make_params(**settings)`: checked params, a pytree of arrays (a ValueError names a bad one)
  with at least `max_steps`, the episode length;
- `reset(key, params) -> state` and `observe(state) -> uint8[obs_shape]`;
- `step(key, state, action, params) -> (state, transition)`, where the transition has at least
  the fields of `Transition`, and may carry more (extras such as the boulder world's
  `partner_action`, which the ISR reads).

Episodes end by truncation (`truncated`, at `params.max_steps`); `step` never resets by itself.
Batching with auto-reset is written once, in `step_batch`, for every environment: it uses the
environment's own `step_batch` where it has one (a faster path with the same distribution) and
otherwise vmaps `step`, resetting where an episode was truncated.

`RegeneratingWorld` is the kind of environment the paper's worlds are: the task's event (a goal
reached) draws a fresh layout and the episode goes on. A subclass writes only `move` (the step
before any fresh layout), `sample_layout` and `observe`; `reset`, `step`, `step_auto_reset` and
a `step_batch` that draws layouts only where needed come from here. A step's fresh layout is
drawn from the step's key; whatever `move` draws (the boulder world's order of the agents),
from `move_key(key)`, a stream of its own.
"""

from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Transition:
    """What one step returns besides the next state: the fields every environment gives."""

    obs: jax.Array
    """uint8[obs_shape]: observation of the next state."""
    env_reward: jax.Array
    """float32: the environment's reward R_e of the step."""
    social_reward: jax.Array
    """float32: the caregiver's social reward R_s of the step (given to the learner or not)."""
    goal_reached: jax.Array
    """bool: the task's event happened (a goal reached; it is what `goals_per_episode` counts)."""
    truncated: jax.Array
    """bool: the step reached the episode's last step."""


@runtime_checkable
class Environment(Protocol):
    """The protocol (see the module doc)."""

    @property
    def obs_shape(self) -> tuple[int, ...]: ...

    @property
    def num_actions(self) -> int: ...

    def make_params(self, **settings: Any) -> Any: ...

    def reset(self, key: jax.Array, params: Any) -> Any: ...

    def step(
        self, key: jax.Array, state: Any, action: jax.Array, params: Any
    ) -> tuple[Any, Transition]: ...

    def observe(self, state: Any) -> jax.Array: ...


def select(condition: jax.Array, new: Any, old: Any) -> Any:
    """The pytree `new` where `condition` (a scalar) holds, else `old`."""
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), new, old)


MOVE_STREAM = 1
"""`move_key` folds this into a step's key."""


def move_key(key: jax.Array) -> jax.Array:
    """The key `RegeneratingWorld.move` draws from, apart from the step's fresh-layout draws
    (which take the step's key itself, as they did before `move` drew anything)."""
    return jax.random.fold_in(key, MOVE_STREAM)


def step_batch(
    env: Environment,
    key: jax.Array,
    states: Any,
    actions: jax.Array,
    params: Any,
    auto_reset: bool = True,
) -> tuple[Any, Transition]:
    """`env.step` over a batch of environments sharing `params` (one `key` for the batch);
    with `auto_reset`, a truncated environment's next state is a new episode's first, and its
    `obs` that state's observation (the rewards and flags are the step's)."""
    own = getattr(env, "step_batch", None)
    if own is not None:
        return own(key, states, actions, params, auto_reset=auto_reset)
    num_envs = actions.shape[0]
    key_step, key_reset = jax.random.split(key)
    states, transitions = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
        jax.random.split(key_step, num_envs), states, actions, params
    )
    if not auto_reset:
        return states, transitions

    def restart(states):
        fresh = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(key_reset, num_envs), params
        )
        states = jax.vmap(select)(transitions.truncated, fresh, states)
        obs = jnp.where(
            transitions.truncated.reshape((-1,) + (1,) * (transitions.obs.ndim - 1)),
            jax.vmap(env.observe)(states),
            transitions.obs,
        )
        return states, obs

    # Resetting costs a layout draw per environment: only on steps where an episode ended.
    states, obs = jax.lax.cond(
        transitions.truncated.any(), restart, lambda s: (s, transitions.obs), states
    )
    return states, transitions.replace(obs=obs)


class RegeneratingWorld:
    """An environment whose event (a goal reached) draws a fresh layout mid-episode.

    Subclasses define `move(state, action, params, key=...) -> (moved_state, transition with
    obs None)` (`key`: `move_key` of the step's key, for a move that draws anything),
    `sample_layout(key, params, time) -> state` (`time`: the episode step the layout starts at)
    and `observe(state)`; states have a `time` field (steps taken in the episode).
    """

    def reset(self, key: jax.Array, params: Any) -> Any:
        """A new episode on a random layout."""
        return self.sample_layout(key, params, jnp.int32(0))

    def step(self, key: jax.Array, state: Any, action: jax.Array, params: Any):
        """Apply `action`; after the event the next state is a fresh layout (from `key`)."""
        moved = self.move(state, action, params, key=move_key(key))
        return self.settle(key, *moved, params, auto_reset=False)

    def step_auto_reset(self, key: jax.Array, state: Any, action: jax.Array, params: Any):
        """`step`, and where the step truncated, the next state is a new episode's first.

        Rewards and flags are the step's; `obs` is then the new episode's first observation (the
        truncated episode's last observation is not returned).
        """
        moved = self.move(state, action, params, key=move_key(key))
        return self.settle(key, *moved, params, auto_reset=True)

    def settle(self, key, moved: Any, transition: Any, params: Any, auto_reset: bool):
        """The step after `move`: a fresh layout where the event happened (or, with
        `auto_reset`, the episode was truncated), and the observation of the next state."""
        new_episode = transition.truncated & auto_reset
        fresh = self.sample_layout(key, params, jnp.where(new_episode, 0, moved.time))
        next_state = select(transition.goal_reached | new_episode, fresh, moved)
        return next_state, transition.replace(obs=self.observe(next_state))

    def step_batch(
        self,
        key: jax.Array,
        states: Any,
        actions: jax.Array,
        params: Any,
        auto_reset: bool = True,
    ):
        """`step_auto_reset` (or `step`) over a batch of environments sharing `params`.

        `states` and `actions` (int[num_envs]) have a leading batch axis; one `key` serves the
        batch. The outcome has the same distribution as vmapping the single-environment step,
        but fresh layouts are drawn only for the environments that need one (an event, or a new
        episode) as long as they are at most a quarter of the batch, for all of it otherwise,
        and for none on a step where none needs one: drawing layouts is a large part of the cost
        of a step.
        """
        num_envs = actions.shape[0]
        move_keys = jax.random.split(move_key(key), num_envs)
        moved, transitions = jax.vmap(lambda s, a, k: self.move(s, a, params, key=k))(
            states, actions, move_keys
        )
        new_episode = transitions.truncated & auto_reset
        refresh = transitions.goal_reached | new_episode
        times = jnp.where(new_episode, 0, moved.time)
        sample = jax.vmap(self.sample_layout, in_axes=(0, None, 0))
        capacity = max(1, num_envs // 4)

        def refresh_few(moved):
            (index,) = jnp.nonzero(refresh, size=capacity, fill_value=num_envs)
            fresh = sample(
                jax.random.split(key, capacity),
                params,
                times.at[index].get(mode="fill", fill_value=0),
            )
            return jax.tree.map(lambda old, new: old.at[index].set(new, mode="drop"), moved, fresh)

        def refresh_all(moved):
            fresh = sample(jax.random.split(key, num_envs), params, times)
            return jax.vmap(select)(refresh, fresh, moved)

        count = refresh.sum()
        branch = jnp.where(count == 0, 0, jnp.where(count <= capacity, 1, 2))
        next_states = jax.lax.switch(branch, (lambda s: s, refresh_few, refresh_all), moved)
        return next_states, transitions.replace(obs=jax.vmap(self.observe)(next_states))


BUILT_IN = {
    "goals": "internalize.envs.goals:GoalsEnv",
    "boulder": "internalize.envs.boulder:BoulderEnv",
}
"""Environments known by name; others are registered by installed packages (entry-point group
`internalize.worlds`) or given as `package.module:make_env` (`internalize.plugins`)."""


def load_env(spec: str) -> Environment:
    """The environment named by `spec`: a name of `BUILT_IN`, a name registered in the group
    `internalize.worlds`, or `package.module:make_env`; what it names is a function (or class)
    that takes no arguments and returns an environment of the protocol. ValueError names what is
    wrong with `spec` or with what it gives."""
    from internalize.plugins import build

    env = build(spec, "world", "internalize.worlds", BUILT_IN)
    if not isinstance(env, Environment):
        missing = [
            name
            for name in ("obs_shape", "num_actions", "make_params", "reset", "step", "observe")
            if not hasattr(env, name)
        ]
        raise ValueError(
            f"world {spec!r} gave {type(env).__name__}, which lacks {missing} of the "
            "protocol (internalize.envs.base)"
        )
    return env
