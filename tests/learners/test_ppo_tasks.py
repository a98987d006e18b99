"""PPO's evaluation without learning, moving a learner to a new task, the ISR threshold and an
experiment's own metrics (hacking's looping)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.envs.constants import Action
from internalize.envs.goals import GoalsEnv
from internalize.experiments.hacking import LoopingMetric
from internalize.learners.ppo import PPO, PRESETS
from internalize.social.caregiver import constant_presence
from internalize.social.rewards import ISRReward, LearnerReward

SMALL = PRESETS["fast"].replace(num_envs=4, num_steps=20, minibatch_size=40, num_epochs=1)
ENV = GoalsEnv()


@dataclasses.dataclass(frozen=True)
class AlwaysPPO(PPO):
    """A PPO whose policy always prefers one action (and values everything at 0)."""

    preferred: int = int(Action.FORWARD)

    def policy(self, params, obs):
        logits = jnp.where(jnp.arange(3) == self.preferred, 5.0, 0.0)
        return jnp.broadcast_to(logits, (*obs.shape[:-3], 3)), jnp.zeros(obs.shape[:-3])


class ConstantISR:
    """Stands in for the ISR network: predicts `params["value"]` everywhere."""

    def apply(self, params, obs, action, partner_action=None):
        return jnp.full(jnp.shape(action), params["value"], jnp.float32)


PPO_3_BLOCKS = PPO(SMALL, ENV, ENV.make_params(n_blocks=3))
UPDATE = jax.jit(PPO_3_BLOCKS.update, static_argnums=2)  # once per threshold and metric
INITIAL = jax.jit(PPO_3_BLOCKS.init)(jax.random.key(4))
LOOPING = LoopingMetric(0.1)


def test_greedy_evaluation_equals_stepping_the_environment_by_hand():
    params = ENV.make_params(n_blocks=3)
    ppo = AlwaysPPO(SMALL, ENV, params)
    key = jax.random.key(3)
    returns, goals = jax.jit(ppo.evaluate, static_argnums=(2, 3, 4))(None, key, 16, 20, True)
    # The same episodes by hand: the same keys, FORWARD every step.
    key_envs, key_steps = jax.random.split(key)
    states, _ = ppo.fresh_envs(key_envs, 16)
    total, reached = np.zeros(16), np.zeros(16)
    step = jax.jit(ENV.step_batch, static_argnames="auto_reset")
    forward = jnp.full(16, int(Action.FORWARD))
    for step_key in jax.random.split(key_steps, 20):
        _, key_step = jax.random.split(step_key)
        states, transition = step(key_step, states, forward, params, auto_reset=False)
        total += np.asarray(transition.env_reward + transition.social_reward)
        reached += np.asarray(transition.goal_reached)
    np.testing.assert_allclose(returns, total, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(goals, reached)
    assert reached.sum() > 0 and np.any(total < 0)  # some goals, some wasted forward moves


def test_evaluation_samples_the_policy_unless_greedy():
    ppo = AlwaysPPO(SMALL, ENV, ENV.make_params(n_blocks=0), preferred=int(Action.LEFT))
    # LEFT is preferred (logit 5 vs 0): greedy never moves, so never pays the forward cost;
    # sampling moves forward about 1 step in 150 (p = 1 / (e^5 + 2)).
    evaluate = jax.jit(ppo.evaluate, static_argnums=(2, 3, 4))
    greedy, _ = evaluate(None, jax.random.key(0), 200, 20, True)
    sampled, _ = evaluate(None, jax.random.key(0), 200, 20, False)
    np.testing.assert_array_equal(greedy, 0.0)
    assert float(jnp.min(sampled)) < 0.0


def test_move_to_task_keeps_the_learner_and_changes_the_task():
    ppo = PPO(SMALL, ENV, ENV.make_params(n_blocks=1))
    runner = jax.jit(ppo.init)(jax.random.key(1))
    runner = runner.replace(step=jnp.int32(1234))
    plus = dataclasses.replace(ppo, env_params=ENV.make_params(layout="plus"))
    moved = jax.jit(plus.move_to_task)(runner, jax.random.key(2))
    assert jax.tree.all(jax.tree.map(jnp.array_equal, moved.train, runner.train))
    assert int(moved.step) == 1234
    walls = np.asarray(moved.env_states.walls)[:, 1:-1, 1:-1]  # interior
    expected = np.asarray(ENV.make_params(layout="plus").fixed_walls)[1:-1, 1:-1]
    assert all(np.array_equal(w, expected) for w in walls)
    np.testing.assert_array_equal(moved.obs, jax.vmap(ENV.observe)(moved.env_states))


def rollout_with(value: float, threshold: float | None):
    isr = ISRReward({"value": jnp.float32(value)}, ConstantISR(), threshold)
    rewards = LearnerReward(constant_presence(0.0), jnp.float32(1.0), isr)
    _, metrics, rollout = UPDATE(INITIAL, rewards, LOOPING)
    return metrics, rollout


@pytest.mark.parametrize(
    ("value", "threshold", "paid"),
    [(0.15, 0.2, 0.0), (0.3, 0.2, 0.3), (0.15, None, 0.15), (0.2, 0.2, 0.0)],
)
def test_isr_threshold_pays_only_above_it(value, threshold, paid):
    _, rollout = rollout_with(value, threshold)
    np.testing.assert_allclose(rollout.internal_reward, paid, rtol=1e-6)


def test_looping_counts_paid_steps_without_a_goal():
    metrics, rollout = rollout_with(0.3, None)
    no_goal = 1.0 - np.asarray(rollout.goal_reached, np.float64).mean()
    assert float(metrics.extra["looping"]) == pytest.approx(no_goal, abs=1e-6)
    assert float(metrics.extra["looping"]) > 0.5
    # Paid below the loop threshold: no looping at all.
    metrics, _ = rollout_with(0.05, None)
    assert float(metrics.extra["looping"]) == 0.0


def test_without_an_isr_nothing_loops():
    rewards = LearnerReward(presence=constant_presence(0.0), internal_weight=jnp.float32(0.0))
    _, metrics, _ = UPDATE(INITIAL, rewards, LOOPING)
    assert float(metrics.extra["looping"]) == 0.0


def test_without_extra_metrics_there_are_none():
    rewards = LearnerReward(presence=constant_presence(0.0), internal_weight=jnp.float32(0.0))
    _, metrics, _ = UPDATE(INITIAL, rewards, None)
    assert metrics.extra == {}
