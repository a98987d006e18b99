"""PPO in JAX: rollout, GAE and the clipped-surrogate update, each a pure function.

`PPO(config, env, env_params)` holds the static parts; `env` is any environment of the protocol
(`internalize.envs.base`). `init(key)` gives a `Runner` (the whole loop state),
`run(runner, rewards, num_updates)` trains for `num_updates` updates in one `lax.scan` and
returns per-update `UpdateMetrics` (aggregated inside the loop, so memory does not grow with the
step count) and, when asked, the socialization data for the ISR. Everything is jittable and
vmappable over seeds and over reward settings.

The learner is given its reward, any object of the protocol `Reward`: PPO calls it on each
batch step, tells it when episodes start anew, and after each update the goals per episode (for
readiness). It knows nothing of caregivers: `social.rewards.LearnerReward` composes
`R_e + P * R_s + (1 - P) * R_i` from a presence schedule and an internal reward model.
Metrics of an experiment's own (hacking's `looping`) come from `run(..., extra_metrics=...)`.

Fidelity to Stable-Baselines3's PPO, which the original used: episodes end only by truncation,
and as in SB3 the value of the truncated episode's last observation is bootstrapped into the
last reward (`reward += gamma * V(s_last)`); advantages are normalised per minibatch (unbiased
std); the value loss is unclipped; Adam with eps 1e-5; one global gradient-norm clip;
observations scaled by `obs_scale` (SB3 divides image observations by 255).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import optax
from flax import struct

from internalize.envs.base import Environment, select, step_batch
from internalize.learners.networks import NETWORKS
from internalize.settings import replace_settings


def permutation(key: jax.Array, n: int) -> jax.Array:
    """`jax.random.permutation(key, n)`, bit for bit, about twice as fast on a CPU.

    JAX shuffles by rounds of a stable sort of the indices by fresh random 32-bit keys, each
    a sort of (key, index) pairs, and XLA's CPU sort of pairs is 4x slower than its sort of
    one array (`stable_order`). Past 2**16 elements it is JAX's own."""
    bits = max(1, math.ceil(math.log2(n))) if n > 1 else 1
    if bits > 16:
        return jax.random.permutation(key, n)
    rounds = math.ceil(3 * math.log(max(1, n)) / math.log(2**32 - 1))  # as JAX counts them
    order = jnp.arange(n)
    for _ in range(rounds):
        key, subkey = jax.random.split(key)
        order = order[stable_order(jax.random.bits(subkey, (n,), jnp.uint32), bits)]
    return order


def stable_order(sort_keys: jax.Array, bits: int) -> jax.Array:
    """The indices of uint32 `sort_keys` (at most 2**`bits` of them, `bits` <= 16) in the order
    of a stable sort, from two sorts of single uint32 arrays whose values are unique (an index
    in their low `bits` bits): first by the keys' low 32 - `bits` bits and the index, then by
    their high `bits` bits and the rank in the first sort, which is the order by (key, index)."""
    low = jnp.uint32(2**bits - 1)
    rank = jnp.arange(sort_keys.shape[0], dtype=jnp.uint32)
    first = jax.lax.sort((sort_keys << bits) | rank) & low
    return first[jax.lax.sort((sort_keys[first] >> (32 - bits) << bits) | rank) & low]


@dataclass(frozen=True)
class PPOConfig:
    """PPO settings; `PRESETS` holds `paper` and `fast`."""

    network: str = "paper_cnn"
    """Network name, a key of `internalize.learners.networks.NETWORKS`."""
    num_envs: int = 1
    """Environments stepped in parallel per run."""
    num_steps: int = 2048
    """Steps per environment per rollout; a rollout is `num_envs * num_steps` samples."""
    minibatch_size: int = 64
    """Samples per gradient step; must divide the rollout size."""
    num_epochs: int = 10
    """Passes over each rollout."""
    learning_rate: float = 1e-4
    """Adam step size (constant)."""
    adam_eps: float = 1e-5
    """Adam epsilon (SB3's value)."""
    gamma: float = 0.99
    """Discount."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_eps: float = 0.2
    """Policy ratio clip."""
    ent_coef: float = 0.0
    """Entropy bonus coefficient."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    obs_scale: float = 1.0 / 255.0
    """Observations are multiplied by this before the network (SB3 divides images by 255)."""
    trunk_width: int = 128
    """Width of the shared dense layer."""
    head_widths: tuple[int, ...] = (64, 64)
    """Hidden tanh layers of the policy and of the value head."""
    parallel_runs: bool | None = None
    """Train runs (seeds, conditions) side by side with `vmap` (True) or one after another
    inside the same jitted call with `lax.map` (False); None (the default): side by side on a
    GPU or TPU, one after another on a CPU (`over_runs`). On a CPU vmapping was up to ~20%
    faster for the fast network at 10 seeds, slower for the paper's. It used to hang for good
    on a CPU: the batched QR of vmapped orthogonal initialisation waited on XLA's thread pool
    from inside it; `learners.networks.orthogonal` now draws a batch of keys one by one
    (benchmarks/RESULTS.md, "Vmapped runs that hung"). The two give other digits."""

    def __post_init__(self) -> None:
        if self.network not in NETWORKS:
            raise ValueError(f"unknown network {self.network!r}; known: {sorted(NETWORKS)}")
        for name in ("num_envs", "num_steps", "minibatch_size", "num_epochs", "trunk_width"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size % self.minibatch_size:
            raise ValueError(
                f"minibatch_size {self.minibatch_size} must divide the rollout size "
                f"num_envs * num_steps = {self.batch_size}"
            )
        for name in ("learning_rate", "adam_eps", "clip_eps", "max_grad_norm", "obs_scale"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")

    @property
    def batch_size(self) -> int:
        """Samples per rollout."""
        return self.num_envs * self.num_steps

    def num_updates(self, steps: int) -> int:
        """Updates needed for at least `steps` environment steps (as SB3 rounds up)."""
        if steps < 0:
            raise ValueError(f"a step count must be >= 0, got {steps}")
        return math.ceil(steps / self.batch_size)

    def replace(self, **changes: Any) -> "PPOConfig":
        return replace_settings(self, "PPO", changes)


PRESETS = {
    "paper": PPOConfig(),
    "fast": PPOConfig(
        network="mlp",
        num_envs=32,
        num_steps=64,
        minibatch_size=128,
        num_epochs=4,
        learning_rate=1e-3,
        obs_scale=0.1,
        trunk_width=64,
        head_widths=(32,),
    ),
}
PRESETS["fast-cnn"] = PRESETS["fast"].replace(
    network="paper_cnn", trunk_width=128, head_widths=(64, 64)
)
"""`fast-cnn`: the paper's CNN (SPEC §4, its widths) with `fast`'s rollouts, minibatches, epochs,
learning rate and observation scale: the paper's inductive bias at `fast`'s pace."""


class TrainState(struct.PyTreeNode):
    params: Any
    opt_state: Any


class Runner(struct.PyTreeNode):
    """Everything that carries from one update to the next (one run; vmap adds a leading axis)."""

    train: TrainState
    env_states: Any
    """The `num_envs` environments."""
    obs: jax.Array
    """uint8[num_envs, H, W, C] their current observations."""
    key: jax.Array
    step: jax.Array
    """int32 environment steps taken so far (all environments), the clock of `Presence`."""
    caregiver: Any = None
    """The reward's state in this run (`Reward.start`; a `LearnerReward`'s is its presence
    schedule's), None until a reward starts it."""


class Reward(Protocol):
    """What PPO is given as its reward (`social.rewards.LearnerReward` is one): a pytree, so
    runs with different rewards share one compiled call, with a state of its own per run
    (`Runner.caregiver`)."""

    def start(self, key: jax.Array, num_envs: int) -> Any:
        """Its state at the start of a run."""

    def __call__(
        self, state: Any, step: jax.Array, obs: jax.Array, action: jax.Array, transition: Any
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(the learner's reward, the internal reward in it, the caregiver's presence), each
        float32[num_envs], for the batch step taken at training step `step`."""

    def new_episodes(self, state: Any, key: jax.Array, fresh: jax.Array) -> Any:
        """Its state after the environments `fresh` start new episodes."""

    def after_update(self, state: Any, step: jax.Array, goals_per_episode: jax.Array) -> Any:
        """Its state after an update (the rollout's goals per episode)."""


class Rollout(struct.PyTreeNode):
    """One rollout, float32/int32[num_steps, num_envs] unless noted."""

    obs: jax.Array
    """uint8[num_steps, num_envs, H, W, C]."""
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array
    """What the learner is trained on, including the truncation bootstrap."""
    truncated: jax.Array
    goal_reached: jax.Array
    env_reward: jax.Array
    social_reward: jax.Array
    """The true R_s, whether or not the learner sees it."""
    internal_reward: jax.Array
    """`(1 - P) * weight * R_i`: the internal reward the learner received."""
    presence: jax.Array
    partner_action: jax.Array | None = None
    """int32: the partner's action, for two-agent tasks (None otherwise)."""


class UpdateMetrics(struct.PyTreeNode):
    """Float32 summaries of one update; per-episode values assume `max_steps`-step episodes."""

    step: jax.Array
    """Environment steps taken by the end of the rollout."""
    goals_per_episode: jax.Array
    env_reward: jax.Array
    """R_e per episode."""
    social_reward: jax.Array
    """True R_s per episode."""
    internal_reward: jax.Array
    """R_i received per episode."""
    true_return: jax.Array
    """R_e + R_s per episode: the return counted with the true caregiver reward."""
    learner_return: jax.Array
    """The learner's reward per episode (without truncation bootstraps)."""
    presence: jax.Array
    policy_loss: jax.Array
    value_loss: jax.Array
    entropy: jax.Array
    approx_kl: jax.Array
    extra: dict = struct.field(default_factory=dict)
    """An experiment's own metrics (`PPO.run`'s `extra_metrics`), by name."""


METRIC_NAMES = tuple(field.name for field in fields(UpdateMetrics) if field.name != "extra")


def side_by_side_by_default() -> bool:
    """Whether runs are vmapped where nothing says (`PPOConfig.parallel_runs` None): where JAX
    runs on a GPU or TPU."""
    return jax.default_backend() != "cpu"


def over_runs(function: Callable, parallel: bool | None = None) -> Callable:
    """`function` applied over a leading run axis of all its arguments: vmapped if `parallel`,
    else one run after another with `lax.map` (the same results but for rounding, one compiled
    loop); None: vmapped where JAX runs on a GPU or TPU, where runs side by side fill the
    device, one after another on a CPU."""
    if parallel is None:
        parallel = side_by_side_by_default()
    if parallel:
        return jax.vmap(function)
    return lambda *args: jax.lax.map(lambda run: function(*run), args)


@dataclass(frozen=True)
class PPO:
    """PPO for one environment configuration; all methods are pure and jittable."""

    config: PPOConfig
    env: Environment
    """Any environment of the protocol (`internalize.envs.base`)."""
    env_params: Any

    @property
    def network(self):
        config = self.config
        module = NETWORKS[config.network]
        return module(
            num_actions=self.env.num_actions,
            trunk_width=config.trunk_width,
            head_widths=config.head_widths,
        )

    @property
    def optimiser(self) -> optax.GradientTransformation:
        return optax.chain(
            optax.clip_by_global_norm(self.config.max_grad_norm),
            optax.adam(self.config.learning_rate, eps=self.config.adam_eps),
        )

    def policy(self, params, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(logits float32[..., A], value float32[...]) for uint8 observations."""
        return self.network.apply(params, self.features(obs))

    def features(self, obs: jax.Array) -> jax.Array:
        """The network's input: uint8 `obs` scaled, as float32."""
        return obs.astype(jnp.float32) * self.config.obs_scale

    def fresh_envs(self, key: jax.Array, count: int) -> tuple[Any, jax.Array]:
        """`count` newly reset environments of this task and their observations."""
        states = jax.vmap(self.env.reset, in_axes=(0, None))(
            jax.random.split(key, count), self.env_params
        )
        return states, jax.vmap(self.env.observe)(states)

    def init(self, key: jax.Array) -> Runner:
        key_params, key_envs, key_run = jax.random.split(key, 3)
        env_states, obs = self.fresh_envs(key_envs, self.config.num_envs)
        params = self.network.init(key_params, self.features(obs[:1]))
        return Runner(
            train=TrainState(params=params, opt_state=self.optimiser.init(params)),
            env_states=env_states,
            obs=obs,
            key=key_run,
            step=jnp.int32(0),
        )

    # ------------------------------------------------------------------------------ rollout

    def _env_step(self, runner: Runner, rewards: Reward, key: jax.Array):
        config, env = self.config, self.env
        key_action, key_step, key_reset = jax.random.split(key, 3)
        params = runner.train.params
        logits, value = self.policy(params, runner.obs)
        action = jax.random.categorical(key_action, logits)
        log_prob = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], 1)[:, 0]
        states, transition = step_batch(
            env, key_step, runner.env_states, action, self.env_params, auto_reset=False
        )
        caregiver = runner.caregiver
        reward, internal, presence = rewards(caregiver, runner.step, runner.obs, action, transition)

        # Episodes end only by truncation, at the same step in every environment. There, as
        # SB3 does, bootstrap the value of the last observation and start new episodes (whose
        # caregiver attendance the schedule draws afresh).
        def restart(states):
            _, last_value = self.policy(params, transition.obs)
            fresh, fresh_obs = self.fresh_envs(key_reset, config.num_envs)
            truncated = transition.truncated
            states = jax.vmap(select)(truncated, fresh, states)
            obs = jnp.where(truncated[:, None, None, None], fresh_obs, transition.obs)
            attending = rewards.new_episodes(caregiver, jax.random.fold_in(key, 1), truncated)
            return states, obs, jnp.where(truncated, config.gamma * last_value, 0.0), attending

        def carry_on(states):
            return states, transition.obs, jnp.zeros_like(reward), caregiver

        states, obs, bootstrap, caregiver = jax.lax.cond(
            transition.truncated.any(), restart, carry_on, states
        )
        sample = Rollout(
            obs=runner.obs,
            action=action,
            log_prob=log_prob,
            value=value,
            reward=reward + bootstrap,
            truncated=transition.truncated,
            goal_reached=transition.goal_reached,
            env_reward=transition.env_reward,
            social_reward=transition.social_reward,
            internal_reward=internal,
            presence=presence,
            # Two-agent tasks (the boulder world) report the partner's action; the ISR reads it.
            partner_action=getattr(transition, "partner_action", None),
        )
        runner = runner.replace(
            env_states=states, obs=obs, step=runner.step + config.num_envs, caregiver=caregiver
        )
        return runner, sample

    def start_caregiver(self, runner: Runner, rewards: Reward) -> Runner:
        """`runner` with the schedule of `rewards` started afresh (from a key of its own, so
        the runner's random numbers stay as they were)."""
        key = jax.random.fold_in(runner.key, 1)
        return runner.replace(caregiver=rewards.start(key, self.config.num_envs))

    def rollout(self, runner: Runner, rewards: Reward) -> tuple[Runner, Rollout]:
        if runner.caregiver is None:
            runner = self.start_caregiver(runner, rewards)
        key, key_steps = jax.random.split(runner.key)
        runner = runner.replace(key=key)
        keys = jax.random.split(key_steps, self.config.num_steps)
        return jax.lax.scan(lambda r, k: self._env_step(r, rewards, k), runner, keys)

    # ------------------------------------------------------------------------------- update

    def advantages(self, rollout: Rollout, last_value: jax.Array) -> jax.Array:
        """GAE over float32[num_steps, num_envs]; truncation ends an episode (its bootstrap is
        already in the reward)."""
        config = self.config

        def backwards(carry, sample):
            advantage, next_value = carry
            reward, value, done = sample
            not_done = 1.0 - done
            delta = reward + config.gamma * next_value * not_done - value
            advantage = delta + config.gamma * config.gae_lambda * not_done * advantage
            return (advantage, value), advantage

        _, advantages = jax.lax.scan(
            backwards,
            (jnp.zeros_like(last_value), last_value),
            (rollout.reward, rollout.value, rollout.truncated.astype(jnp.float32)),
            reverse=True,
        )
        return advantages

    def loss(self, params, batch: Rollout, advantage: jax.Array, target: jax.Array):
        """The PPO loss of one minibatch and its parts (policy, value, entropy, approx KL)."""
        config = self.config
        logits, value = self.policy(params, batch.obs)
        log_probs = jax.nn.log_softmax(logits)
        log_prob = jnp.take_along_axis(log_probs, batch.action[:, None], 1)[:, 0]
        advantage = (advantage - advantage.mean()) / (advantage.std(ddof=1) + 1e-8)
        log_ratio = log_prob - batch.log_prob
        ratio = jnp.exp(log_ratio)
        clipped = jnp.clip(ratio, 1.0 - config.clip_eps, 1.0 + config.clip_eps)
        policy_loss = -jnp.minimum(ratio * advantage, clipped * advantage).mean()
        value_loss = ((target - value) ** 2).mean()
        entropy = -(jnp.exp(log_probs) * log_probs).sum(-1).mean()
        total = policy_loss - config.ent_coef * entropy + config.vf_coef * value_loss
        approx_kl = ((ratio - 1.0) - log_ratio).mean()
        return total, (policy_loss, value_loss, entropy, approx_kl)

    def learn(self, train: TrainState, rollout: Rollout, advantage, target, key) -> tuple:
        """`num_epochs` passes of shuffled minibatches; returns the new state and mean losses."""
        config = self.config
        flat = jax.tree.map(lambda x: x.reshape((config.batch_size,) + x.shape[2:]), rollout)
        advantage, target = advantage.reshape(-1), target.reshape(-1)
        num_minibatches = config.batch_size // config.minibatch_size

        def minibatch_step(train: TrainState, index: jax.Array):
            batch = jax.tree.map(lambda x: x[index], flat)
            grads, parts = jax.grad(self.loss, has_aux=True)(
                train.params, batch, advantage[index], target[index]
            )
            updates, opt_state = self.optimiser.update(grads, train.opt_state, train.params)
            params = optax.apply_updates(train.params, updates)
            return TrainState(params=params, opt_state=opt_state), parts

        def epoch(train: TrainState, key: jax.Array):
            order = permutation(key, config.batch_size)
            return jax.lax.scan(
                minibatch_step, train, order.reshape(num_minibatches, config.minibatch_size)
            )

        train, parts = jax.lax.scan(epoch, train, jax.random.split(key, config.num_epochs))
        return train, jax.tree.map(jnp.mean, parts)

    def update(
        self,
        runner: Runner,
        rewards: Reward,
        extra_metrics: Callable[[Rollout], dict] | None = None,
    ) -> tuple[Runner, UpdateMetrics, Rollout]:
        """One rollout and its learning; returns the rollout too (for the ISR's data)."""
        runner, rollout = self.rollout(runner, rewards)
        _, last_value = self.policy(runner.train.params, runner.obs)
        advantage = self.advantages(rollout, last_value)
        key, key_learn = jax.random.split(runner.key)
        train, (policy_loss, value_loss, entropy, approx_kl) = self.learn(
            runner.train, rollout, advantage, advantage + rollout.value, key_learn
        )
        runner = runner.replace(train=train, key=key)
        per_episode = self.env_params.max_steps.astype(jnp.float32) / self.config.batch_size

        def per_episode_sum(x):
            return x.astype(jnp.float32).sum() * per_episode

        metrics = UpdateMetrics(
            step=runner.step.astype(jnp.float32),
            goals_per_episode=per_episode_sum(rollout.goal_reached),
            env_reward=per_episode_sum(rollout.env_reward),
            social_reward=per_episode_sum(rollout.social_reward),
            internal_reward=per_episode_sum(rollout.internal_reward),
            true_return=per_episode_sum(rollout.env_reward + rollout.social_reward),
            learner_return=per_episode_sum(
                rollout.env_reward
                + rollout.presence * rollout.social_reward
                + rollout.internal_reward
            ),
            presence=rollout.presence.mean(),
            policy_loss=policy_loss,
            value_loss=value_loss,
            entropy=entropy,
            approx_kl=approx_kl,
            extra=extra_metrics(rollout) if extra_metrics is not None else {},
        )
        caregiver = rewards.after_update(runner.caregiver, runner.step, metrics.goals_per_episode)
        return runner.replace(caregiver=caregiver), metrics, rollout

    def move_to_task(self, runner: Runner, key: jax.Array) -> Runner:
        """`runner` with fresh environments of this PPO's task: a learner moved to a new task
        keeps its parameters, optimiser state and step count."""
        env_states, obs = self.fresh_envs(key, self.config.num_envs)
        return runner.replace(env_states=env_states, obs=obs)

    def evaluate(
        self, params, key: jax.Array, num_episodes: int, episode_steps: int, greedy: bool = False
    ) -> tuple[jax.Array, jax.Array]:
        """Play `num_episodes` episodes of `episode_steps` steps side by side, without learning.

        Actions are sampled from the policy, or its most likely action if `greedy`. Returns the
        true return (R_e + R_s) and the goals reached, float32[num_episodes] each.
        """
        key_envs, key_steps = jax.random.split(key)
        states, obs = self.fresh_envs(key_envs, num_episodes)

        def one_step(carry, key):
            states, obs = carry
            key_action, key_step = jax.random.split(key)
            logits, _ = self.policy(params, obs)
            if greedy:
                action = jnp.argmax(logits, axis=-1)
            else:
                action = jax.random.categorical(key_action, logits)
            states, transition = step_batch(
                self.env, key_step, states, action, self.env_params, auto_reset=False
            )
            true_reward = transition.env_reward + transition.social_reward
            return (states, transition.obs), (true_reward, transition.goal_reached)

        _, (rewards, goals) = jax.lax.scan(
            one_step, (states, obs), jax.random.split(key_steps, episode_steps)
        )
        return rewards.sum(0), goals.sum(0).astype(jnp.float32)

    def run(
        self,
        runner: Runner,
        rewards: Reward,
        num_updates: int,
        collect: bool = False,
        extra_metrics: Callable[[Rollout], dict] | None = None,
    ) -> tuple[Runner, UpdateMetrics, Any]:
        """`num_updates` updates in one scan, rewarded by `rewards` (its schedule starts
        afresh). Returns the runner, `UpdateMetrics` with a leading axis of `num_updates`, and,
        if `collect`, the ISR data (`isr_data`, leading axes [U, S, E]); otherwise None.
        `extra_metrics(rollout)`, if given, adds an experiment's own float32 metrics per update
        (`UpdateMetrics.extra`)."""

        def one_update(runner: Runner, _):
            runner, metrics, rollout = self.update(runner, rewards, extra_metrics)
            return runner, (metrics, isr_data(rollout) if collect else None)

        runner = self.start_caregiver(runner, rewards)
        runner, (metrics, data) = jax.lax.scan(one_update, runner, None, length=num_updates)
        return runner, metrics, data


def isr_data(rollout: Rollout) -> tuple:
    """What an ISR learns from in one rollout: obs uint8[S, E, H, W, C], action and social
    reward [S, E], and, in two-agent tasks, the partner's action int32[S, E]."""
    data = (rollout.obs, rollout.action, rollout.social_reward)
    return data if rollout.partner_action is None else (*data, rollout.partner_action)
