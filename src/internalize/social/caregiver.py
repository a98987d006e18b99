"""The caregiver of SPEC §1: when it is there (a presence schedule), and the learner's reward.

The learner maximises `U = R_e + P * R_s + (1 - P) * R_i`. The social reward `R_s` comes from
the environment (`Transition.social_reward`); `R_i` from an internal reward model, or nothing
(`internalize.social.rewards` composes them). Presence `P` depends on the training step
(environment steps taken so far, over all parallel environments of a run) and, for some
schedules, on the run itself:

- two-phase (the paper's): present until a step, then gone (`two_phase`);
- fading: gone linearly over some steps (`fading`);
- intermittent: present on a random share of episodes, drawn per environment and episode
  (`intermittent`);
- readiness: leaves at the first update where the learner's goals per episode, averaged over
  its last updates, reach a threshold (`readiness`).

All are one vmappable pytree, `Presence`, so runs with different schedules (and values) train
side by side in one compiled call. What a schedule remembers during a run (which environments
have the caregiver this episode, when readiness made it leave) is a `CaregiverState`.
"""

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class CaregiverState:
    """What the schedule remembers within one run (`Presence.start` makes it)."""

    present: jax.Array
    """bool[num_envs]: the caregiver attends this episode of each environment (intermittent)."""
    left_at: jax.Array
    """float32: the step at which readiness made the caregiver leave (inf: it has not)."""
    recent_goals: jax.Array
    """float32[ready_window]: goals per episode of the last updates, newest last (nan: none)."""


@struct.dataclass
class Presence:
    """P(step): `before` until `switch_step`, then linear over `fade_steps` steps to `after`;
    times the intermittent draw of the episode, and with the switch brought forward to the
    update at which the learner is ready.

    `fade_steps = 0` is the paper's two-phase switch. All fields but `ready_window` are float32
    scalars (or batched arrays under vmap).
    """

    before: jax.Array
    """Presence before the switch, in [0, 1]."""
    after: jax.Array
    """Presence once the fade is over, in [0, 1]."""
    switch_step: jax.Array
    """Training step at which the caregiver starts to leave."""
    fade_steps: jax.Array
    """Steps over which presence moves from `before` to `after` (0: at once)."""
    episode_share: jax.Array = struct.field(default_factory=lambda: jnp.float32(1.0))
    """Probability that the caregiver attends an episode (drawn per environment and episode);
    1: every episode."""
    ready_goals: jax.Array = struct.field(default_factory=lambda: jnp.float32(math.inf))
    """Readiness: the switch comes at the first update at which the learner's goals per
    episode, averaged over its last `ready_window` updates, reach this (inf: never)."""
    ready_window: int = struct.field(pytree_node=False, default=4)
    """Updates that readiness averages over."""

    def __call__(self, step: jax.Array, left_at: jax.Array | float = math.inf) -> jax.Array:
        """Presence at `step` (float32) of an attended episode; `left_at`: the step at which
        readiness made the caregiver leave, if it did."""
        switch_step = jnp.minimum(self.switch_step, left_at)
        elapsed = jnp.asarray(step, jnp.float32) - switch_step
        faded = jnp.clip(elapsed / jnp.maximum(self.fade_steps, 1.0), 0.0, 1.0)
        progress = jnp.where(self.fade_steps > 0, faded, (elapsed >= 0).astype(jnp.float32))
        return self.before + (self.after - self.before) * progress

    def start(self, key: jax.Array, num_envs: int) -> CaregiverState:
        """The state at the start of a run of `num_envs` environments."""
        return CaregiverState(
            present=self._attends(key, num_envs),
            left_at=jnp.float32(math.inf),
            recent_goals=jnp.full(self.ready_window, jnp.nan, jnp.float32),
        )

    def per_env(self, state: CaregiverState, step: jax.Array) -> jax.Array:
        """float32[num_envs]: presence in each environment at `step`."""
        return self(step, state.left_at) * state.present.astype(jnp.float32)

    def new_episodes(
        self, state: CaregiverState, key: jax.Array, started: jax.Array
    ) -> CaregiverState:
        """Draw attendance afresh for the environments where a new episode `started`."""
        drawn = self._attends(key, started.shape[0])
        return state.replace(present=jnp.where(started, drawn, state.present))

    def after_update(
        self, state: CaregiverState, step: jax.Array, goals_per_episode: jax.Array
    ) -> CaregiverState:
        """Record an update's goals per episode; the first time the average of the last
        `ready_window` reaches `ready_goals`, the caregiver leaves (from `step` on)."""
        recent, ready = readiness_check(state.recent_goals, goals_per_episode, self.ready_goals)
        left_at = jnp.where(
            jnp.isinf(state.left_at) & ready, jnp.asarray(step, jnp.float32), state.left_at
        )
        return state.replace(recent_goals=recent, left_at=left_at)

    def _attends(self, key: jax.Array, count: int) -> jax.Array:
        return jax.random.uniform(key, (count,)) < self.episode_share


def readiness_check(
    recent_goals: jax.Array, goals_per_episode: jax.Array, ready_goals: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Readiness's rule: `recent_goals` (float32[window], newest last, nan: none yet) with an
    update's `goals_per_episode` added, and whether their mean reaches `ready_goals` (any
    shape) with the window full."""
    recent = jnp.roll(recent_goals, -1).at[-1].set(goals_per_episode)
    return recent, ~jnp.isnan(recent).any() & (recent.mean() >= ready_goals)


def make_presence(
    before: float = 1.0,
    after: float = 0.0,
    switch_step: float = math.inf,
    fade_steps: float = 0.0,
    episode_share: float = 1.0,
    ready_goals: float = math.inf,
    ready_window: int = 4,
) -> Presence:
    """A checked `Presence` (see its fields); the named schedules below are made with it, and
    so is a schedule of your own. ValueError names an impossible value."""
    values = (before, after, switch_step, fade_steps, episode_share, ready_goals)
    _check(*values, ready_window)
    return Presence(*(jnp.float32(value) for value in values), ready_window=ready_window)


def _check(
    before: float,
    after: float,
    switch_step: float,
    fade_steps: float,
    episode_share: float,
    ready_goals: float,
    ready_window: int,
) -> None:
    """Raise ValueError naming the first impossible value of a schedule (no JAX here: configs
    are checked before JAX starts)."""
    if not (0.0 <= before <= 1.0 and 0.0 <= after <= 1.0):
        raise ValueError(f"presence must lie in [0, 1], got {before} and {after}")
    if switch_step < 0 or fade_steps < 0:
        raise ValueError(
            f"switch_step and fade_steps must be >= 0, got {switch_step} and {fade_steps}"
        )
    if not 0.0 < episode_share <= 1.0:
        raise ValueError(f"episode_share must lie in (0, 1], got {episode_share}")
    if not ready_goals >= 0:
        raise ValueError(f"ready_goals must be >= 0 (inf: never ready), got {ready_goals}")
    if ready_window < 1:
        raise ValueError(f"ready_window must be >= 1, got {ready_window}")


def constant_presence(level: float) -> Presence:
    """The caregiver at `level` throughout (1: always there, 0: never)."""
    return make_presence(level, level, 0.0, 0.0)


def two_phase(switch_step: float) -> Presence:
    """Present (P = 1) until `switch_step`, absent (P = 0) from then on: SPEC §1's phases."""
    return make_presence(1.0, 0.0, switch_step, 0.0)


def fading(switch_step: float, fade_steps: float) -> Presence:
    """Present until `switch_step`, then fading linearly to absent over `fade_steps`."""
    return make_presence(1.0, 0.0, switch_step, fade_steps)


def intermittent(episode_share: float, switch_step: float = math.inf) -> Presence:
    """Present on a random `episode_share` of episodes (each environment's episodes drawn
    apart) until `switch_step`, absent from then on."""
    return make_presence(1.0, 0.0, switch_step, 0.0, episode_share=episode_share)


def readiness(ready_goals: float, window: int = 4, switch_step: float = math.inf) -> Presence:
    """Present until the first update at which the learner's goals per episode, averaged over
    its last `window` updates, reach `ready_goals` (or until `switch_step`, if sooner), absent
    from then on: the caregiver leaves when the learner is ready."""
    return make_presence(1.0, 0.0, switch_step, 0.0, ready_goals=ready_goals, ready_window=window)


REWARD_FORMS = ("add", "replace", "alone")
"""How the internal reward R_i enters the learner's reward once the caregiver is gone
(`learner_reward`): `add` (the paper's), `replace`, `alone` (SPEC §7: the original's code used
each in another experiment)."""


def learner_reward(
    env_reward: jax.Array,
    social_reward: jax.Array,
    internal_reward: jax.Array,
    presence: jax.Array,
    form: str = "add",
    internal_weight: jax.Array | float = 1.0,
) -> jax.Array:
    """The learner's reward, elementwise: `P * (R_e + R_s) + (1 - P) * A`, where what the
    learner gets without the caregiver, A, takes the internal reward R_i in the `form`:

    - `add`: `A = R_e + R_i`, so the reward is `R_e + P * R_s + (1 - P) * R_i` (SPEC §1);
    - `replace`: `A = R_i` where R_i > 0 (where the ISR pays: above its threshold, if it has
      one), `R_e` elsewhere (the original's ood and layouts, SPEC §7);
    - `alone`: `A = R_i`, no environment reward or step cost (the original's prosocial), in
      runs whose `internal_weight` is > 0; runs without an internal reward keep `A = R_e`.
    """
    if form == "add":
        return env_reward + presence * social_reward + (1.0 - presence) * internal_reward
    if form == "replace":
        alone = jnp.where(internal_reward > 0, internal_reward, env_reward)
    elif form == "alone":
        alone = jnp.where(jnp.asarray(internal_weight) > 0, internal_reward, env_reward)
    else:
        raise ValueError(f"unknown reward form {form!r}; known: {list(REWARD_FORMS)}")
    return presence * (env_reward + social_reward) + (1.0 - presence) * alone


SCHEDULES = ("two_phase", "fading", "intermittent", "readiness")


@dataclass(frozen=True)
class ScheduleConfig:
    """How the caregiver leaves when socialization ends (in the conditions where it leaves)."""

    kind: str = "two_phase"
    """`two_phase` (gone at once: the paper's), `fading`, `intermittent`, `readiness`, or a
    schedule of one's own: a name an installed package registers (entry-point group
    `internalize.schedules`) or `package.module:make_schedule`, a function
    `(switch_step, config) -> Presence` (`make_presence`; `config` is this ScheduleConfig, whose
    values it may read)."""
    fade_steps: int = 30_000
    """fading: environment steps over which presence falls linearly from 1 to 0."""
    episode_share: float = 0.5
    """intermittent: the share of episodes (drawn per environment) the caregiver still attends."""
    ready_goals: float = 1.0
    """readiness: the caregiver stays until the learner's goals per episode, averaged over its
    last `ready_window` updates, reach this."""
    ready_window: int = 4
    """readiness: updates averaged."""

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:  # one of one's own: named if it cannot be loaded
            from internalize.plugins import load

            built_in = {name: f"{__name__}:{name}" for name in SCHEDULES}  # named in errors
            load(self.kind, "schedule", "internalize.schedules", built_in)
        # Every value is checked, whichever kind uses it.
        _check(
            1.0, 0.0, 0.0, self.fade_steps, self.episode_share, self.ready_goals, self.ready_window
        )

    def presence(self, switch_step: float) -> Presence:
        """The schedule of a caregiver that starts to leave at `switch_step`."""
        if self.kind == "fading":
            return fading(switch_step, self.fade_steps)
        if self.kind == "intermittent":
            return intermittent(self.episode_share)
        if self.kind == "readiness":
            return readiness(self.ready_goals, self.ready_window)
        if self.kind == "two_phase":
            return two_phase(switch_step)
        from internalize.plugins import build

        presence = build(self.kind, "schedule", "internalize.schedules", {}, switch_step, self)
        if not isinstance(presence, Presence):
            raise ValueError(
                f"schedule {self.kind!r} gave {type(presence).__name__}, not a Presence "
                "(social.caregiver.make_presence)"
            )
        return presence
