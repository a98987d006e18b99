"""gymnax both ways: our environments as gymnax environments, gymnax environments as ours.

`to_gymnax(env)` shows any environment of our protocol (`internalize.envs.base`) as a gymnax
(1.0) `Environment`, for gymnax's auto-resetting `step`, its wrappers and the agents written for
it (PureJaxRL and the like). The reward is R_e + R_s, the caregiver present, or R_e alone with
`caregiver=False`; `info` carries both and `goal_reached`. Our episodes never terminate: the
step that reaches `max_steps` is reported as truncated (`done`), and gymnax's `step` starts a
new episode there.

`from_gymnax(gymnax_env, gymnax_params, caregiver, max_steps)` makes a gymnax environment with
discrete actions one of ours, with a caregiver written as a function
`caregiver(state, action, next_state, reward, done) -> float32 scalar R_s` of gymnax states, so
that `PPO` and the experiments can socialize a learner on it. How the two episode notions map:

- Our episode is `max_steps` steps of the gymnax environment, counted by the state's `time`;
  `truncated` is set on the step that reaches it (so all environments of a batch truncate
  together, as `PPO` needs).
- A gymnax episode that ends inside ours (`done`: terminated, or gymnax's own time limit) is
  reset inside our `step` with the step's key, and the step reports `goal_reached` (the event
  that `goals_per_episode` counts), as our worlds draw a fresh layout after a goal and go on.
  `terminated` (an extra field) tells a natural end from gymnax's time limit. For CartPole a
  gymnax episode ends with a fall, so there `goals_per_episode` counts falls.
- R_e is gymnax's reward; R_s is the caregiver's, computed from the state before the step and
  the state the step reached (before any reset).
- Observations are float32 (not uint8 as in our worlds; the learner's `obs.astype(float32) *
  obs_scale` takes them as they are, so train with `obs_scale=1.0`), shaped to at least three
  axes with leading 1s (CartPole's (4,) becomes (1, 1, 4)): our networks and `PPO` read the
  last three axes of an observation as [H, W, C].

Needs gymnax (`pip install "internalize[gymnax]"`).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

try:
    from gymnax.environments import environment, spaces
except ImportError as error:  # pragma: no cover - exercised by a test that hides gymnax
    raise ImportError(
        "internalize.adapters.gymnax needs gymnax; install the extra: "
        'pip install "internalize[gymnax]"'
    ) from error

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from internalize.envs.base import Environment, Transition, select

# ------------------------------------------------------------------------ ours as gymnax


@struct.dataclass
class GymnaxViewState(environment.EnvState):
    """The state gymnax sees: our environment's state and the step's truncation flag."""

    env_state: Any
    """Our environment's state."""
    truncated: jax.Array
    """bool: the step that reached this state ended the episode (at `max_steps`)."""


class GymnaxView(environment.Environment):
    """An environment of our protocol as a gymnax `Environment` (see the module doc).

    Params are our environment's params (`default_params`: the ones given, or its
    `make_params()`); observations uint8[obs_shape], actions `Discrete(num_actions)`.
    """

    def __init__(self, env: Environment, params: Any = None, caregiver: bool = True):
        super().__init__()
        self.env = env
        self.params = env.make_params() if params is None else params
        self.caregiver = caregiver

    @property
    def default_params(self) -> Any:
        return self.params

    def step_env(self, key: jax.Array, state: GymnaxViewState, action, params: Any):
        env_state, transition = self.env.step(key, state.env_state, action, params)
        reward = transition.env_reward
        if self.caregiver:
            reward = reward + transition.social_reward
        next_state = GymnaxViewState(
            time=state.time + 1, env_state=env_state, truncated=transition.truncated
        )
        info = {
            "env_reward": transition.env_reward,
            "social_reward": transition.social_reward,
            "goal_reached": transition.goal_reached,
        }
        return transition.obs, next_state, reward, jnp.bool_(False), info

    def reset_env(self, key: jax.Array, params: Any) -> tuple[jax.Array, GymnaxViewState]:
        env_state = self.env.reset(key, params)
        state = GymnaxViewState(time=jnp.int32(0), env_state=env_state, truncated=jnp.bool_(False))
        return self.env.observe(env_state), state

    def get_obs(self, state: GymnaxViewState, params: Any = None, key: Any = None) -> jax.Array:
        return self.env.observe(state.env_state)

    def is_truncated(self, state: GymnaxViewState, params: Any) -> jax.Array:
        return state.truncated

    def is_terminated(self, state: GymnaxViewState, params: Any) -> jax.Array:
        return jnp.bool_(False)

    @property
    def name(self) -> str:
        return f"internalize/{type(self.env).__name__}"

    @property
    def num_actions(self) -> int:
        return self.env.num_actions

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(self.env.num_actions)

    def observation_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(0, 255, self.env.obs_shape, jnp.uint8)


def to_gymnax(env: Environment, params: Any = None, caregiver: bool = True) -> GymnaxView:
    """`env` (our protocol) as a gymnax environment: reward R_e + R_s, or R_e if not
    `caregiver`; `params` default to `env.make_params()`."""
    if not isinstance(env, Environment):
        raise ValueError(f"{env!r} does not follow the environment protocol of envs/base.py")
    return GymnaxView(env, params, caregiver)


# ------------------------------------------------------------------------ gymnax as ours

Caregiver = Callable[[Any, jax.Array, Any, jax.Array, jax.Array], jax.Array]
"""`caregiver(state, action, next_state, reward, done) -> float32 scalar R_s`, on gymnax states."""


@struct.dataclass
class GymnaxParams:
    """Params of a `GymnaxWorld`: the gymnax env's own and our episode length."""

    gymnax: Any
    """The gymnax environment's params."""
    max_steps: jax.Array
    """int32: our episode length; `truncated` is set on the step that reaches it."""


@struct.dataclass
class GymnaxWorldState:
    """State of a `GymnaxWorld`."""

    gymnax: Any
    """The gymnax environment's state (of its current episode)."""
    obs: jax.Array
    """float32[obs_shape]: its observation."""
    time: jax.Array
    """int32: steps taken in our episode (not reset when a gymnax episode ends)."""


@struct.dataclass
class GymnaxTransition(Transition):
    """`Transition` with one extra field."""

    terminated: jax.Array
    """bool: the gymnax episode ended naturally (not by gymnax's own time limit)."""


@dataclass(frozen=True)
class GymnaxWorld:
    """A gymnax environment with a caregiver, in our protocol (see the module doc)."""

    gymnax_env: environment.Environment
    gymnax_params: Any
    """Default gymnax params (`make_params` may give others)."""
    caregiver: Caregiver
    max_steps: int
    """Default episode length."""
    obs_shape: tuple[int, ...]
    """Observation shape: the gymnax one with leading 1s up to three axes."""

    @property
    def num_actions(self) -> int:
        return self.gymnax_env.action_space(self.gymnax_params).n

    def make_params(self, max_steps: int | None = None, gymnax_params: Any = None) -> GymnaxParams:
        """Checked params; a ValueError names a bad setting."""
        max_steps = _check_max_steps(self.max_steps if max_steps is None else max_steps)
        gymnax_params = self.gymnax_params if gymnax_params is None else gymnax_params
        return GymnaxParams(gymnax=gymnax_params, max_steps=jnp.int32(max_steps))

    def reset(self, key: jax.Array, params: GymnaxParams) -> GymnaxWorldState:
        obs, state = self.gymnax_env.reset_env(key, params.gymnax)
        return GymnaxWorldState(gymnax=state, obs=self._shape(obs), time=jnp.int32(0))

    def step(
        self, key: jax.Array, state: GymnaxWorldState, action: jax.Array, params: GymnaxParams
    ) -> tuple[GymnaxWorldState, GymnaxTransition]:
        key_step, key_reset = jax.random.split(key)
        obs, stepped, reward, terminated, _ = self.gymnax_env.step_env(
            key_step, state.gymnax, action, params.gymnax
        )
        done = jnp.logical_or(terminated, self.gymnax_env.is_truncated(stepped, params.gymnax))
        social_reward = _social_reward(self.caregiver(state.gymnax, action, stepped, reward, done))
        fresh = self.gymnax_env.reset_env(key_reset, params.gymnax)
        obs, next_gymnax = select(done, fresh, (obs, stepped))
        time = state.time + 1
        next_state = GymnaxWorldState(gymnax=next_gymnax, obs=self._shape(obs), time=time)
        return next_state, GymnaxTransition(
            obs=next_state.obs,
            env_reward=jnp.asarray(reward, jnp.float32),
            social_reward=social_reward,
            goal_reached=done,
            truncated=time >= params.max_steps,
            terminated=jnp.asarray(terminated, bool),
        )

    def observe(self, state: GymnaxWorldState) -> jax.Array:
        return state.obs

    def _shape(self, obs: jax.Array) -> jax.Array:
        return jnp.asarray(obs, jnp.float32).reshape(self.obs_shape)


def from_gymnax(
    gymnax_env: environment.Environment,
    gymnax_params: Any,
    caregiver: Caregiver,
    max_steps: int,
) -> GymnaxWorld:
    """A gymnax environment with discrete actions and a caregiver, as one of our environments
    with `max_steps`-step episodes (see the module doc for the mapping). Raises ValueError for
    a non-positive `max_steps`, a gymnax environment without discrete actions, or a caregiver
    that is not a function returning a scalar (checked by tracing one step)."""
    _check_max_steps(max_steps)
    if not callable(caregiver):
        raise ValueError(f"the caregiver must be a function, got {caregiver!r}")
    action_space = gymnax_env.action_space(gymnax_params)
    if not isinstance(action_space, spaces.Discrete):
        raise ValueError(
            f"only discrete actions are supported; {gymnax_env.name} has {action_space}"
        )
    obs = jax.eval_shape(gymnax_env.reset_env, jax.random.key(0), gymnax_params)[0]
    if len(obs.shape) > 3:
        raise ValueError(f"observations of at most 3 axes are supported, got shape {obs.shape}")
    shape = (1,) * (3 - len(obs.shape)) + tuple(obs.shape)
    world = GymnaxWorld(gymnax_env, gymnax_params, caregiver, int(max_steps), shape)
    params = world.make_params()
    state = jax.eval_shape(world.reset, jax.random.key(0), params)
    jax.eval_shape(world.step, jax.random.key(0), state, jnp.int32(0), params)
    return world


def _check_max_steps(max_steps: Any) -> int:
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)):
        raise ValueError(f"max_steps must be an integer, got {max_steps!r}")
    if max_steps <= 0:
        raise ValueError(f"max_steps must be positive, got {max_steps}")
    return int(max_steps)


def _social_reward(value: Any) -> jax.Array:
    """The caregiver's output as a float32 scalar, or a ValueError saying what it was."""
    shape = jnp.shape(value)
    if shape != ():
        raise ValueError(
            f"the caregiver must return a scalar social reward, got an array of shape {shape}"
        )
    return jnp.asarray(value, jnp.float32)
