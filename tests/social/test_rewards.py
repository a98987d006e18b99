"""The learner's reward composed outside the learner: schedules that depend on the run
(intermittent, readiness) and internal reward models of the ISR interface, inside PPO."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from internalize.envs.goals import GoalsEnv
from internalize.isr.model import ISRNetwork
from internalize.learners.ppo import PPO, PRESETS
from internalize.social.caregiver import constant_presence, intermittent, readiness
from internalize.social.rewards import ISRReward, LearnerReward

ENV = GoalsEnv()
SMALL = PRESETS["fast"].replace(num_envs=8, num_steps=40, minibatch_size=80, num_epochs=1)
PPO_SMALL = PPO(SMALL, ENV, ENV.make_params(n_blocks=3))
RUN = jax.jit(PPO_SMALL.run, static_argnums=2)


def run(rewards: LearnerReward, updates: int = 6, seed: int = 0):
    runner = PPO_SMALL.init(jax.random.key(seed))
    return RUN(runner, rewards, updates)


def test_intermittent_presence_inside_ppo():
    """Present on half the episodes: the presence the learner saw averages about one half, and
    is 0 or 1 within an episode (each environment's 20-step episodes drawn apart)."""
    rewards = LearnerReward(intermittent(0.5), jnp.float32(0.0))
    _, metrics, _ = run(rewards, updates=10)
    # 8 environments x 2 episodes per update x 10 updates = 160 draws: sd 0.04.
    assert float(metrics.presence.mean()) == pytest.approx(0.5, abs=0.15)
    assert 0.0 < float(metrics.presence.min()) and float(metrics.presence.max()) < 1.0


def test_readiness_leaves_once_the_learner_is_ready():
    """A threshold the learner passes at once (goals per episode >= 0 over 2 updates): present
    for exactly the first two updates, absent from then on."""
    rewards = LearnerReward(readiness(0.0, window=2), jnp.float32(0.0))
    _, metrics, _ = run(rewards)
    np.testing.assert_array_equal(metrics.presence, [1, 1, 0, 0, 0, 0])
    # A threshold never reached: the caregiver stays.
    rewards = LearnerReward(readiness(1000.0, window=2), jnp.float32(0.0))
    _, metrics, _ = run(rewards)
    np.testing.assert_array_equal(metrics.presence, 1.0)


@struct.dataclass
class MeanOfModels:
    """An internal reward model of two ISRs (what an ensemble is): their mean."""

    first: ISRReward
    second: ISRReward

    def __call__(self, obs, action, transition):
        return 0.5 * (self.first(obs, action, transition) + self.second(obs, action, transition))


def test_any_model_with_the_isr_interface_drops_in():
    network = ISRNetwork()
    params = [network.init(jax.random.key(k), jnp.zeros((9, 9, 4), jnp.uint8), 0) for k in (1, 2)]
    model = MeanOfModels(ISRReward(params[0]), ISRReward(params[1]))
    rewards = LearnerReward(constant_presence(0.0), jnp.float32(1.0), model)
    _, rollout = jax.jit(PPO_SMALL.rollout)(PPO_SMALL.init(jax.random.key(3)), rewards)
    by_hand = 0.5 * sum(network.apply(p, rollout.obs, rollout.action) for p in params)
    np.testing.assert_allclose(rollout.internal_reward, by_hand, rtol=1e-5, atol=1e-6)
    assert float(jnp.abs(by_hand).max()) > 1e-3


def test_paper_schedules_leave_the_random_numbers_as_they_were():
    """A schedule's own draws come from keys of their own: the learner with the caregiver
    present throughout trains on the same numbers whether attendance is drawn or not."""
    always = LearnerReward(constant_presence(1.0), jnp.float32(0.0))
    share_one = LearnerReward(intermittent(1.0), jnp.float32(0.0))
    first, _, _ = run(always, updates=2)
    second, _, _ = run(share_one, updates=2)
    assert jax.tree.all(jax.tree.map(jnp.array_equal, first.train.params, second.train.params))


@struct.dataclass
class PaysForward:
    """An internal reward model that pays 0.3 for moving forward (action 2), else nothing."""

    def __call__(self, obs, action, transition):
        return jnp.where(action == 2, 0.3, 0.0)


def test_reward_forms_inside_ppo():
    """With the caregiver gone, the learner is trained on R_e + R_i (`add`), on R_i where the
    model pays and R_e elsewhere (`replace`), or on R_i alone (`alone`): checked on the
    rewards of one rollout (the same actions under each form: the rollout's draws do not
    depend on its rewards)."""
    runner = PPO_SMALL.init(jax.random.key(3))
    rollouts = {
        form: jax.jit(PPO_SMALL.rollout)(
            runner, LearnerReward(constant_presence(0.0), jnp.float32(1.0), PaysForward(), form)
        )[1]
        for form in ("add", "replace", "alone")
    }
    add = rollouts["add"]
    paid = add.internal_reward
    assert 0.0 < float((paid > 0).mean()) < 1.0  # some steps paid, some not
    for rollout in rollouts.values():
        np.testing.assert_array_equal(rollout.action, add.action)
    last = add.truncated  # the reward of a truncated step holds its bootstrap: left out
    expected = {
        "add": add.env_reward + paid,
        "replace": jnp.where(paid > 0, paid, add.env_reward),
        "alone": paid,
    }
    for form, rewards in expected.items():
        np.testing.assert_allclose(
            rollouts[form].reward[~last], rewards[~last], rtol=1e-6, atol=1e-7, err_msg=form
        )
    with pytest.raises(ValueError, match="unknown reward form 'instead'"):
        LearnerReward(constant_presence(0.0), jnp.float32(1.0), None, "instead")
