"""PPO: GAE and the loss against hand computations, config checks, determinism, jit/vmap,
the truncation bootstrap, and that the learner learns (and unlearns) on the goals gridworld."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from internalize.envs.goals import GoalsEnv
from internalize.isr.model import ISRNetwork
from internalize.learners.ppo import (
    PPO,
    PRESETS,
    PPOConfig,
    Rollout,
    over_runs,
    permutation,
    stable_order,
)
from internalize.social.caregiver import constant_presence
from internalize.social.rewards import ISRReward, LearnerReward

KEY = jax.random.key(0)
SMALL = PRESETS["fast"].replace(num_envs=4, num_steps=20, minibatch_size=40, num_epochs=1)
RANDOM_POLICY_GOALS = 0.16  # goals per episode of a uniformly random policy on 3 blocks


def setting(presence: float, internal_weight: float = 0.0, isr_params=None) -> LearnerReward:
    return LearnerReward(
        presence=constant_presence(presence),
        internal_weight=jnp.float32(internal_weight),
        internal=None if isr_params is None else ISRReward(isr_params),
    )


def make_ppo(config: PPOConfig = SMALL) -> PPO:
    env = GoalsEnv()
    return PPO(config, env, env.make_params())


def values_only_rollout(reward, value, truncated) -> Rollout:
    """A Rollout holding only what `PPO.advantages` reads."""
    none = dict.fromkeys(
        [
            "obs",
            "action",
            "log_prob",
            "goal_reached",
            "env_reward",
            "social_reward",
            "internal_reward",
            "presence",
        ]
    )
    return Rollout(
        reward=jnp.asarray(reward, jnp.float32),
        value=jnp.asarray(value, jnp.float32),
        truncated=jnp.asarray(truncated, bool),
        **none,
    )


# ------------------------------------------------------------------------------- config


def test_presets():
    paper, fast = PRESETS["paper"], PRESETS["fast"]
    # SPEC §4's hyperparameters.
    assert (paper.network, paper.num_envs, paper.num_steps, paper.minibatch_size) == (
        "paper_cnn",
        1,
        2048,
        64,
    )
    assert (paper.num_epochs, paper.learning_rate, paper.gamma, paper.gae_lambda) == (
        10,
        1e-4,
        0.99,
        0.95,
    )
    assert (paper.clip_eps, paper.ent_coef, paper.vf_coef, paper.max_grad_norm) == (
        0.2,
        0.0,
        0.5,
        0.5,
    )
    assert paper.obs_scale == pytest.approx(1 / 255)
    assert fast.network == "mlp" and fast.batch_size == 32 * 64
    # Neither says: runs go one after another on a CPU, side by side on a GPU or TPU.
    assert paper.parallel_runs is None and fast.parallel_runs is None


@pytest.mark.parametrize(
    ("steps", "updates"), [(0, 0), (1, 1), (2048, 1), (2049, 2), (120_000, 59)]
)
def test_num_updates_rounds_up(steps, updates):
    assert PRESETS["fast"].num_updates(steps) == updates
    assert PRESETS["paper"].num_updates(steps) == updates  # also 2048 samples per rollout


def test_num_updates_rejects_negative_steps():
    with pytest.raises(ValueError, match="step count must be >= 0, got -1"):
        PRESETS["fast"].num_updates(-1)


def test_replace_changes_only_what_it_names():
    changed = PRESETS["fast"].replace(num_steps=20, gamma=0.5)
    assert changed.num_steps == 20 and changed.gamma == 0.5
    assert changed.num_envs == 32 and changed.network == "mlp"
    assert PRESETS["fast"].num_steps == 64  # the preset itself is untouched


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"minibatch_size": 48}, "minibatch_size 48 must divide the rollout size"),
        ({"network": "resnet"}, "unknown network 'resnet'"),
        ({"num_envs": 0}, "num_envs must be >= 1"),
        ({"num_epochs": 0}, "num_epochs must be >= 1"),
        ({"learning_rate": 0.0}, "learning_rate must be > 0"),
        ({"clip_eps": -0.1}, "clip_eps must be > 0"),
        ({"gamma": 1.5}, "gamma must lie in"),
        ({"gae_lambda": -0.1}, "gae_lambda must lie in"),
        ({"lr": 1e-3}, r"unknown PPO setting\(s\) \['lr'\]"),
    ],
)
def test_bad_settings_raise_naming_the_field(changes, message):
    with pytest.raises(ValueError, match=message):
        PRESETS["fast"].replace(**changes)


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        PRESETS["fast"].num_envs = 2


# ---------------------------------------------------------------------------------- GAE


def gae_numpy(reward, value, done, last_value, gamma, lam):
    """The textbook GAE loop (SB3's `compute_returns_and_advantage`), float64."""
    steps = reward.shape[0]
    advantage = np.zeros_like(reward, dtype=np.float64)
    running = np.zeros(reward.shape[1:])
    for t in reversed(range(steps)):
        next_value = last_value if t == steps - 1 else value[t + 1]
        not_done = 1.0 - done[t]
        delta = reward[t] + gamma * next_value * not_done - value[t]
        running = delta + gamma * lam * not_done * running
        advantage[t] = running
    return advantage


def test_gae_by_hand():
    """Two steps, one env, gamma = lambda = 0.5, no episode end."""
    ppo = make_ppo(SMALL.replace(gamma=0.5, gae_lambda=0.5))
    rollout = values_only_rollout([[1.0], [2.0]], [[0.5], [1.0]], [[False], [False]])
    advantage = ppo.advantages(rollout, jnp.asarray([4.0]))
    # delta_1 = 2 + 0.5 * 4 - 1 = 3; A_1 = 3.
    # delta_0 = 1 + 0.5 * 1 - 0.5 = 1; A_0 = 1 + 0.25 * 3 = 1.75.
    np.testing.assert_allclose(advantage[:, 0], [1.75, 3.0])


def test_gae_stops_at_a_truncation():
    """A truncation at step 0 cuts step 0 off from everything after it."""
    ppo = make_ppo(SMALL.replace(gamma=0.5, gae_lambda=0.5))
    rollout = values_only_rollout([[1.0], [2.0]], [[0.5], [1.0]], [[True], [False]])
    advantage = ppo.advantages(rollout, jnp.asarray([4.0]))
    np.testing.assert_allclose(advantage[:, 0], [1.0 - 0.5, 3.0])


def test_gae_against_a_numpy_loop():
    rng = np.random.default_rng(0)
    steps, envs = 50, 3
    reward = rng.normal(size=(steps, envs))
    value = rng.normal(size=(steps, envs))
    done = np.zeros((steps, envs))
    done[[9, 19, 29], :] = 1.0  # episode ends in the middle of the rollout
    done[33, 1] = 1.0  # and one env on its own
    last_value = rng.normal(size=envs)
    ppo = make_ppo(SMALL)
    ours = ppo.advantages(values_only_rollout(reward, value, done.astype(bool)), last_value)
    expected = gae_numpy(reward, value, done, last_value, SMALL.gamma, SMALL.gae_lambda)
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)
    # The truncations matter: without them the answer differs.
    no_done = gae_numpy(reward, value, 0 * done, last_value, SMALL.gamma, SMALL.gae_lambda)
    assert np.abs(ours - no_done).max() > 0.1


def test_gae_is_jittable_and_vmappable():
    rng = np.random.default_rng(1)
    reward, value = rng.normal(size=(2, 30, 4)), rng.normal(size=(2, 30, 4))
    done = rng.random((2, 30, 4)) < 0.1
    last_value = rng.normal(size=(2, 4))
    ppo = make_ppo(SMALL)
    batched = jax.jit(jax.vmap(ppo.advantages))(
        values_only_rollout(reward, value, done), jnp.asarray(last_value, jnp.float32)
    )
    for i in range(2):
        expected = gae_numpy(reward[i], value[i], done[i], last_value[i], 0.99, 0.95)
        np.testing.assert_allclose(batched[i], expected, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------ rollout

FORTY = SMALL.replace(num_steps=40, minibatch_size=160)


@pytest.fixture(scope="module")
def two_episodes():
    """One update of 40 steps of 4 environments with 20-step episodes, the caregiver present,
    no ISR: the initial runner, the runner after, the update's metrics and its rollout."""
    ppo = make_ppo(FORTY)
    runner = jax.jit(ppo.init)(KEY)
    final, metrics, rollout = jax.jit(ppo.update)(runner, setting(1.0))
    return ppo, runner, final, metrics, rollout


def test_rollout_shapes_and_clock(two_episodes):
    ppo, runner, final, _, rollout = two_episodes
    assert rollout.obs.shape == (40, 4, 9, 9, 4) and rollout.obs.dtype == jnp.uint8
    for name in ("action", "log_prob", "value", "reward", "truncated", "presence"):
        assert getattr(rollout, name).shape == (40, 4), name
    assert int(runner.step) == 0 and int(final.step) == 160
    # The second episode was truncated at the last step and new episodes started.
    np.testing.assert_array_equal(final.env_states.time, 0)
    np.testing.assert_array_equal(rollout.presence, 1.0)
    np.testing.assert_array_equal(rollout.internal_reward, 0.0)
    # The log-probabilities and values are those of the policy that acted.
    logits, value = jax.jit(ppo.policy)(runner.train.params, rollout.obs)
    log_prob = jnp.take_along_axis(jax.nn.log_softmax(logits), rollout.action[..., None], -1)
    np.testing.assert_allclose(rollout.log_prob, log_prob[..., 0], atol=1e-5)
    np.testing.assert_allclose(rollout.value, value, atol=1e-5)
    np.testing.assert_array_equal(rollout.obs[0], runner.obs)


def test_truncation_bootstrap_only_on_truncation_steps(two_episodes):
    *_, rollout = two_episodes
    truncated = np.asarray(rollout.truncated)
    expected = np.zeros((40, 4), bool)
    expected[[19, 39], :] = True
    np.testing.assert_array_equal(truncated, expected)
    bootstrap = np.asarray(rollout.reward - (rollout.env_reward + rollout.social_reward))
    np.testing.assert_array_equal(bootstrap[~truncated], 0.0)
    # gamma * V(last observation): the initial value head is small, but not zero.
    assert (np.abs(bootstrap[truncated]) > 0).all()
    assert np.abs(bootstrap[truncated]).max() < 5.0


def test_rewards_are_the_environments(two_episodes):
    """R_e is -0.045 exactly on forward moves that miss the goal, R_s 0.4 on goals."""
    *_, rollout = two_episodes
    forward = np.asarray(rollout.action) == 2
    goal = np.asarray(rollout.goal_reached)
    np.testing.assert_allclose(rollout.env_reward, np.where(forward & ~goal, -0.045, 0.0))
    np.testing.assert_allclose(rollout.social_reward, np.where(goal, 0.4, 0.0))
    assert forward.sum() > 20  # a near-uniform policy moves forward about a third of the time


def test_update_metrics_summarise_the_rollout(two_episodes):
    *_, final, metrics, rollout = two_episodes
    per_episode = 20 / 160
    assert float(metrics.step) == 160 == int(final.step)
    assert float(metrics.goals_per_episode) == pytest.approx(
        float(rollout.goal_reached.sum()) * per_episode
    )
    assert float(metrics.true_return) == pytest.approx(
        float((rollout.env_reward + rollout.social_reward).sum()) * per_episode, abs=1e-6
    )
    # Presence 1, no ISR: the learner's return is the true return.
    assert float(metrics.learner_return) == pytest.approx(float(metrics.true_return), abs=1e-6)
    assert float(metrics.presence) == 1.0 and float(metrics.internal_reward) == 0.0
    assert float(metrics.entropy) == pytest.approx(np.log(3), abs=0.01)


def test_absent_caregiver_with_isr_gives_the_internal_reward(two_episodes):
    """P = 0 and an ISR with weight 2: the learner's reward is R_e + 2 R_i(s, a) (+ bootstrap)."""
    ppo, runner, *_ = two_episodes
    isr_params = ISRNetwork().init(jax.random.key(5), jnp.zeros((9, 9, 4), jnp.uint8), 0)
    _, rollout = jax.jit(ppo.rollout)(runner, setting(0.0, 2.0, isr_params))
    predicted = jax.jit(ISRNetwork().apply)(isr_params, rollout.obs, rollout.action)
    np.testing.assert_allclose(rollout.internal_reward, 2.0 * predicted, rtol=1e-5, atol=1e-6)
    assert np.abs(np.asarray(predicted)).max() > 1e-3
    not_last = np.asarray(~rollout.truncated)
    np.testing.assert_allclose(
        np.asarray(rollout.reward)[not_last],
        np.asarray(rollout.env_reward + 2.0 * predicted)[not_last],
        rtol=1e-5,
        atol=1e-6,
    )
    np.testing.assert_array_equal(rollout.presence, 0.0)


# --------------------------------------------------------------------------------- loss


@pytest.fixture(scope="module")
def loss_case(two_episodes):
    """A PPO with entropy and value terms, the initial parameters, and a minibatch of the 4
    first observations, whose logits and values under those parameters are known."""
    _, runner, *_ = two_episodes
    ppo = make_ppo(FORTY.replace(ent_coef=0.01))
    params = runner.train.params
    obs = runner.obs
    action = jnp.asarray([0, 1, 2, 2])
    logits, value = jax.jit(ppo.policy)(params, obs)
    log_probs = np.asarray(jax.nn.log_softmax(logits), np.float64)
    new_log_prob = log_probs[np.arange(4), np.asarray(action)]
    return ppo, params, obs, action, log_probs, new_log_prob, np.asarray(value, np.float64)


def batch_with_ratio(obs, action, new_log_prob, ratio) -> Rollout:
    """A minibatch whose old log-probabilities make `new / old` equal `ratio`."""
    old = new_log_prob - np.log(ratio)
    zeros = jnp.zeros(4)
    return Rollout(
        obs=obs,
        action=action,
        log_prob=jnp.asarray(old, jnp.float32),
        value=zeros,
        reward=zeros,
        truncated=zeros,
        goal_reached=zeros,
        env_reward=zeros,
        social_reward=zeros,
        internal_reward=zeros,
        presence=zeros,
    )


def test_loss_with_ratio_one(loss_case):
    ppo, params, obs, action, log_probs, new_log_prob, value = loss_case
    advantage = jnp.asarray([1.0, 3.0, -1.0, -3.0])
    target = jnp.asarray([0.5, -0.5, 1.0, 0.0])
    batch = batch_with_ratio(obs, action, new_log_prob, np.ones(4))
    total, (policy_loss, value_loss, entropy, approx_kl) = jax.jit(ppo.loss)(
        params, batch, advantage, target
    )
    # Ratio 1: the policy loss is minus the mean normalised advantage, which is 0.
    assert abs(float(policy_loss)) < 1e-6
    assert abs(float(approx_kl)) < 1e-6
    expected_value_loss = np.mean((np.asarray(target) - value) ** 2)
    expected_entropy = -(np.exp(log_probs) * log_probs).sum(-1).mean()
    np.testing.assert_allclose(value_loss, expected_value_loss, rtol=1e-5)
    np.testing.assert_allclose(entropy, expected_entropy, rtol=1e-5)
    assert entropy == pytest.approx(np.log(3), abs=1e-3)  # near-uniform initial policy
    np.testing.assert_allclose(
        total, -0.01 * expected_entropy + 0.5 * expected_value_loss, rtol=1e-5, atol=1e-6
    )


def test_loss_where_clipping_binds(loss_case):
    ppo, params, obs, action, _, new_log_prob, _ = loss_case
    # Advantages [1, 3, -1, -3]: mean 0, unbiased std sqrt(20 / 3), so normalised A / 2.582.
    advantage = jnp.asarray([1.0, 3.0, -1.0, -3.0])
    ratio = np.asarray([1.5, 0.5, 1.5, 0.5])
    batch = batch_with_ratio(obs, action, new_log_prob, ratio)
    _, (policy_loss, _, _, approx_kl) = jax.jit(ppo.loss)(params, batch, advantage, jnp.zeros(4))
    # Per sample min(r A, clip(r, 0.8, 1.2) A):
    #   r 1.5, A  1: min(1.5, 1.2)  = 1.2  (clipped)
    #   r 0.5, A  3: min(1.5, 2.4)  = 1.5  (unclipped)
    #   r 1.5, A -1: min(-1.5, -1.2) = -1.5 (unclipped)
    #   r 0.5, A -3: min(-1.5, -2.4) = -2.4 (clipped)
    # Mean -1.2 / 4 = -0.3, over std sqrt(20 / 3): policy loss 0.3 / 2.58199 = 0.116190.
    assert float(policy_loss) == pytest.approx(0.3 / np.sqrt(20 / 3), rel=1e-5)
    expected_kl = np.mean((ratio - 1) - np.log(ratio))
    assert float(approx_kl) == pytest.approx(expected_kl, rel=1e-5)


def test_fully_clipped_samples_give_no_policy_gradient(loss_case):
    """Ratio 1.5 on positive advantages and 0.5 on negative ones: every sample is clipped, so
    with no value or entropy term the gradient is exactly zero; at ratio 1 it is not."""
    _, params, obs, action, _, new_log_prob, _ = loss_case
    ppo = make_ppo(FORTY.replace(vf_coef=0.0))
    advantage = jnp.asarray([1.0, 3.0, -1.0, -3.0])
    gradient = jax.jit(jax.grad(ppo.loss, has_aux=True))

    def gradient_norm(ratio):
        batch = batch_with_ratio(obs, action, new_log_prob, np.asarray(ratio))
        grads, _ = gradient(params, batch, advantage, jnp.zeros(4))
        return float(optax.tree.norm(grads))

    assert gradient_norm([1.5, 1.5, 0.5, 0.5]) == 0.0
    assert gradient_norm([1.0, 1.0, 1.0, 1.0]) > 1e-4


def test_learn_in_one_minibatch_is_one_clipped_adam_step(two_episodes):
    """With one epoch and one minibatch per rollout, `learn` takes exactly one optimiser step on
    the gradient of the loss over the whole rollout (its order does not matter)."""
    _, runner, _, _, rollout = two_episodes
    ppo = make_ppo(FORTY.replace(learning_rate=1e-2))
    advantage = jax.random.normal(jax.random.key(2), (40, 4))
    target = jax.random.normal(jax.random.key(3), (40, 4))
    new_train, losses = jax.jit(ppo.learn)(
        runner.train, rollout, advantage, target, jax.random.key(4)
    )

    @jax.jit
    def one_step(train, rollout, advantage, target):
        flat = jax.tree.map(lambda x: x.reshape((160,) + x.shape[2:]), rollout)
        grads, parts = jax.grad(ppo.loss, has_aux=True)(
            train.params, flat, advantage.reshape(-1), target.reshape(-1)
        )
        updates, _ = ppo.optimiser.update(grads, train.opt_state, train.params)
        return optax.apply_updates(train.params, updates), parts

    expected, parts = one_step(runner.train, rollout, advantage, target)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
        new_train.params,
        expected,
    )
    for ours, theirs in zip(losses, parts, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
    # Adam's first step moves each parameter by about lr * sign(gradient).
    change = jax.tree.map(
        lambda a, b: np.abs(np.asarray(a - b)).max(), new_train.params, runner.train.params
    )
    assert max(jax.tree.leaves(change)) == pytest.approx(1e-2, rel=0.01)


# ------------------------------------------------------------------ determinism, jit/vmap


@pytest.fixture(scope="module")
def small_train():
    ppo = make_ppo(SMALL)

    def train(key):
        runner, metrics, _ = ppo.run(ppo.init(key), setting(1.0), 3)
        return runner.train.params, metrics

    return train


def test_run_is_deterministic_for_a_key(small_train):
    train = jax.jit(small_train)
    params_a, metrics_a = train(KEY)
    params_b, metrics_b = train(KEY)
    params_c, _ = train(jax.random.key(1))
    jax.tree.map(np.testing.assert_array_equal, (params_a, metrics_a), (params_b, metrics_b))
    assert metrics_a.goals_per_episode.shape == (3,)
    np.testing.assert_array_equal(metrics_a.step, [80, 160, 240])
    differs = jax.tree.map(lambda a, c: not np.array_equal(a, c), params_a, params_c)
    assert all(jax.tree.leaves(differs))


@pytest.mark.parametrize(
    "parallel",
    [
        # `parallel_runs=True` is not the default of any preset (see `PPOConfig.parallel_runs`).
        pytest.param(True, id="vmap", marks=pytest.mark.slow),
        pytest.param(False, id="lax.map"),
    ],
)
def test_runs_side_by_side_equal_separate_runs(small_train, parallel):
    """`over_runs` (vmap, or lax.map one run after another) over 2 keys gives the 2 runs."""
    keys = jax.random.split(jax.random.key(7), 2)
    batched_params, batched_metrics = jax.jit(over_runs(small_train, parallel))(keys)
    single = jax.jit(small_train)
    for i in range(2):
        params, metrics = single(keys[i])
        jax.tree.map(
            lambda a, b, i=i: np.testing.assert_allclose(a[i], b, rtol=1e-4, atol=1e-5),
            (batched_params, batched_metrics),
            (params, metrics),
        )
    assert not np.array_equal(batched_metrics.policy_loss[0], batched_metrics.policy_loss[1])


# ------------------------------------------------------------------------------ learning


@pytest.fixture(scope="module")
def socialized_then_left():
    """Fast preset, 2 seeds side by side: 30 updates (61,440 steps per seed) with the caregiver
    present, then 30 more with it gone and no ISR (only R_e, the forward costs)."""
    ppo = make_ppo(PRESETS["fast"])

    def train(key):
        runner, present, _ = ppo.run(ppo.init(key), setting(1.0), 30)
        _, absent, _ = ppo.run(runner, setting(0.0), 30)
        return present, absent

    present, absent = jax.jit(jax.vmap(train))(jax.random.split(jax.random.key(1234), 2))
    return (
        np.asarray(present.goals_per_episode),
        np.asarray(absent.goals_per_episode),
        np.asarray(absent.social_reward),
    )


def test_ppo_learns_to_reach_goals(socialized_then_left):
    """Measured: 2.0 to 2.5 goals per episode over the last 3 updates (8 seeds), against 0.16
    for a random policy."""
    goals, _, _ = socialized_then_left
    assert goals.shape == (2, 30)
    early = goals[:, :3].mean(axis=1)
    late = goals[:, -3:].mean(axis=1)
    assert (early < 0.4).all(), early  # it starts near the random policy's rate
    assert (late > 1.0).all(), late
    assert (late > 6 * RANDOM_POLICY_GOALS).all()


def test_ppo_unlearns_without_the_caregiver(socialized_then_left):
    """With the caregiver gone and no ISR only the forward costs remain, and the learner stops
    moving towards goals. Measured: 0.0 to 0.04 goals per episode after 30 updates (8 seeds)."""
    trained, goals, social = socialized_then_left
    assert (goals[:, :2].mean(axis=1) > 1.0).all()  # it starts where socialization ended
    late = goals[:, -3:].mean(axis=1)
    assert (late < 0.3).all(), late
    assert (late < trained[:, -3:].mean(axis=1) / 5).all()
    # The true social reward goes on being counted (0.4 a goal) though the learner no longer
    # sees it.
    np.testing.assert_allclose(social, 0.4 * goals, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 100, 1625, 1626, 2048, 4096, 65_536])
def test_permutation_is_jaxs_bit_for_bit(n):
    keys = jax.random.split(jax.random.key(n), 8)
    ours = jax.jit(jax.vmap(lambda key: permutation(key, n)))(keys)
    jaxs = jax.jit(jax.vmap(lambda key: jax.random.permutation(key, n)))(keys)
    assert ours.dtype == jaxs.dtype
    np.testing.assert_array_equal(ours, jaxs)


@pytest.mark.parametrize("spread", [1, 4, 2**11, 2**21, 2**32])
def test_stable_order_breaks_ties_by_index(spread):
    """Keys with many ties, in the low bits, the high bits or both, sort as a stable sort."""
    rng = np.random.default_rng(spread)
    for n, bits in ((1000, 10), (2048, 11), (2048, 16)):
        keys = (rng.integers(0, spread, n, dtype=np.uint64) * (2**32 // spread)).astype(np.uint32)
        order = jax.jit(stable_order, static_argnums=1)(jnp.asarray(keys), bits)
        np.testing.assert_array_equal(order, np.argsort(keys, kind="stable"))
