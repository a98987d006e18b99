import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.social.caregiver import (
    REWARD_FORMS,
    Presence,
    constant_presence,
    fading,
    intermittent,
    learner_reward,
    readiness,
    two_phase,
)


def at(presence: Presence, steps) -> np.ndarray:
    return np.asarray([float(presence(jnp.int32(step))) for step in steps])


@pytest.mark.parametrize("level", [0.0, 0.3, 1.0])
def test_constant_presence(level):
    np.testing.assert_allclose(at(constant_presence(level), [0, 1, 1000, 10**6]), level)


def test_two_phase_switches_at_the_step():
    presence = two_phase(100)
    np.testing.assert_array_equal(at(presence, [0, 1, 99, 100, 101, 5000]), [1, 1, 1, 0, 0, 0])


def test_two_phase_at_zero_is_never_present():
    np.testing.assert_array_equal(at(two_phase(0), [0, 1, 50]), [0, 0, 0])


def test_fading_is_linear():
    presence = fading(100, 50)
    steps = [0, 99, 100, 110, 125, 140, 150, 151, 10_000]
    # Elapsed 10 of 50: 1 - 0.2 = 0.8; the midpoint 125: 0.5; 140: 0.2.
    np.testing.assert_allclose(at(presence, steps), [1, 1, 1, 0.8, 0.5, 0.2, 0, 0, 0], atol=1e-6)


def test_fading_over_zero_steps_is_the_two_phase_switch():
    steps = [0, 49, 50, 51]
    np.testing.assert_array_equal(at(fading(50, 0), steps), at(two_phase(50), steps))


def test_presence_between_any_two_levels():
    presence = Presence(
        before=jnp.float32(0.2),
        after=jnp.float32(0.8),
        switch_step=jnp.float32(10),
        fade_steps=jnp.float32(4),
    )
    np.testing.assert_allclose(
        at(presence, [0, 10, 11, 12, 14, 20]), [0.2, 0.2, 0.35, 0.5, 0.8, 0.8]
    )


def test_presence_is_float32_and_jittable():
    presence = fading(100, 50)
    value = jax.jit(lambda p, s: p(s))(presence, jnp.int32(125))
    assert value.dtype == jnp.float32 and float(value) == pytest.approx(0.5)
    steps = jnp.arange(0, 200, 25, dtype=jnp.int32)
    np.testing.assert_allclose(jax.vmap(presence)(steps), [1, 1, 1, 1, 1, 0.5, 0, 0], atol=1e-6)


def test_vmap_over_stacked_schedules():
    schedules = [two_phase(10), fading(10, 20), constant_presence(0.3), constant_presence(1.0)]
    stacked = jax.tree.map(lambda *fields: jnp.stack(fields), *schedules)
    assert stacked.switch_step.shape == (4,)
    steps = [0, 10, 20, 40]
    got = jax.jit(jax.vmap(lambda p, s: p(s), in_axes=(0, None)))
    table = np.stack([np.asarray(got(stacked, jnp.int32(step))) for step in steps], axis=1)
    expected = [
        [1, 0, 0, 0],  # two_phase(10)
        [1, 1, 0.5, 0],  # fading(10, 20)
        [0.3, 0.3, 0.3, 0.3],
        [1, 1, 1, 1],
    ]
    np.testing.assert_allclose(table, expected, atol=1e-6)
    # Each row equals the schedule called on its own.
    for row, schedule in zip(table, schedules, strict=True):
        np.testing.assert_allclose(row, at(schedule, steps), atol=1e-6)


def test_learner_reward_by_hand():
    # R_e + P R_s + (1 - P) R_i = -0.045 + 0.25 * 0.4 + 0.75 * 0.3 = 0.28.
    assert float(learner_reward(-0.045, 0.4, 0.3, 0.25)) == pytest.approx(0.28)
    env = jnp.asarray([-0.045, 0.0, -0.045, 0.0])
    social = jnp.asarray([0.0, 0.4, 0.0, 0.4])
    internal = jnp.asarray([0.1, 0.35, 0.0, 0.0])
    # Present: the caregiver's reward; absent: the internal one.
    np.testing.assert_allclose(
        learner_reward(env, social, internal, 1.0), [-0.045, 0.4, -0.045, 0.4], atol=1e-7
    )
    np.testing.assert_allclose(
        learner_reward(env, social, internal, 0.0), [0.055, 0.35, -0.045, 0.0], atol=1e-7
    )
    # Presence per element broadcasts too.
    presence = jnp.asarray([1.0, 0.0, 0.5, 0.5])
    np.testing.assert_allclose(
        learner_reward(env, social, internal, presence), [-0.045, 0.35, -0.045, 0.2], atol=1e-7
    )


def test_reward_forms_by_hand():
    """SPEC §7's forms of the internal reward once the caregiver is gone, and between."""
    env = jnp.asarray([-0.009, -0.009, 0.991, -0.009])
    social = jnp.asarray([0.0, 0.4, 0.0, 0.0])
    internal = jnp.asarray([0.0, 0.35, 0.3, 0.0])  # as paid: 0 below the ISR's threshold
    gone, half = 0.0, jnp.asarray([0.5, 0.5, 0.5, 0.5])
    # replace: R_i where the ISR pays, R_e elsewhere (the goal's +1 too where it does not).
    np.testing.assert_allclose(
        learner_reward(env, social, internal, gone, "replace"), [-0.009, 0.35, 0.3, -0.009]
    )
    # alone: R_i only, no step cost, in runs with an internal reward; R_e in runs without.
    np.testing.assert_allclose(
        learner_reward(env, social, internal, gone, "alone", 1.0), [0.0, 0.35, 0.3, 0.0]
    )
    np.testing.assert_allclose(
        learner_reward(env, social, internal * 0, gone, "alone", 0.0), env, atol=1e-7
    )
    # Half there: half the caregiver's world, half the autonomous one.
    np.testing.assert_allclose(
        learner_reward(env, social, internal, half, "replace"),
        [-0.009, 0.5 * (-0.009 + 0.4) + 0.5 * 0.35, 0.5 * 0.991 + 0.5 * 0.3, -0.009],
        atol=1e-7,
    )
    # Present throughout, every form is the caregiver's R_e + R_s.
    for form in REWARD_FORMS:
        np.testing.assert_allclose(
            learner_reward(env, social, internal, 1.0, form, 1.0), env + social, atol=1e-7
        )
    with pytest.raises(ValueError, match="unknown reward form 'instead'; known: \\['add'"):
        learner_reward(env, social, internal, gone, "instead")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: constant_presence(1.5), r"presence must lie in \[0, 1\]"),
        (lambda: constant_presence(-0.1), r"presence must lie in \[0, 1\]"),
        (lambda: two_phase(-1), "switch_step and fade_steps must be >= 0"),
        (lambda: fading(-5, 10), "switch_step and fade_steps must be >= 0"),
        (lambda: fading(10, -5), "switch_step and fade_steps must be >= 0"),
    ],
)
def test_bad_schedules_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: intermittent(0.0), r"episode_share must lie in \(0, 1\]"),
        (lambda: intermittent(1.5), r"episode_share must lie in \(0, 1\]"),
        (lambda: readiness(-1.0), "ready_goals must be >= 0"),
        (lambda: readiness(1.0, window=0), "ready_window must be >= 1"),
    ],
)
def test_bad_new_schedules_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_intermittent_attends_a_share_of_episodes_drawn_per_environment_and_episode():
    presence = intermittent(0.3)
    state = presence.start(jax.random.key(0), 10_000)
    assert float(state.present.mean()) == pytest.approx(0.3, abs=0.015)
    level = presence.per_env(state, jnp.int32(10**6))
    np.testing.assert_array_equal(level, state.present.astype(np.float32))
    # A new episode in half the environments: only those draw again, and independently.
    started = jnp.arange(10_000) % 2 == 0
    later = jax.jit(presence.new_episodes)(state, jax.random.key(1), started)
    np.testing.assert_array_equal(later.present[1::2], state.present[1::2])
    redrawn = np.asarray(later.present[::2])
    assert redrawn.mean() == pytest.approx(0.3, abs=0.02)
    assert np.mean(redrawn == np.asarray(state.present[::2])) < 0.7  # not the same draw
    # Every episode attended (share 1), as in the paper, whatever the draw.
    always = constant_presence(1.0)
    np.testing.assert_array_equal(always.start(jax.random.key(2), 64).present, True)


def test_intermittent_ends_at_its_switch_step():
    presence = intermittent(1.0, switch_step=100)
    state = presence.start(jax.random.key(0), 4)
    np.testing.assert_array_equal(presence.per_env(state, jnp.int32(99)), 1.0)
    np.testing.assert_array_equal(presence.per_env(state, jnp.int32(100)), 0.0)


def test_readiness_leaves_at_the_first_update_the_average_reaches_the_threshold():
    presence = readiness(1.0, window=3)
    state = presence.start(jax.random.key(0), 2)
    after = jax.jit(presence.after_update)
    # Goals per episode at the updates ending at steps 100, 200, ...: the mean of the last
    # three first reaches 1.0 at step 500 (0.6, 1.2, 1.2).
    goals = [2.0, 0.0, 0.6, 1.2, 1.2, 0.0, 5.0]
    left = []
    for update, value in enumerate(goals):
        state = after(state, jnp.int32(100 * (update + 1)), jnp.float32(value))
        left.append(float(state.left_at))
    # Not before three updates are seen (2.0 alone would pass), then never again.
    assert left == [np.inf, np.inf, np.inf, np.inf, 500.0, 500.0, 500.0]
    np.testing.assert_array_equal(presence.per_env(state, jnp.int32(499)), 1.0)
    np.testing.assert_array_equal(presence.per_env(state, jnp.int32(500)), 0.0)


def test_never_ready_is_always_present():
    presence = readiness(math.inf)
    state = presence.start(jax.random.key(0), 2)
    for update in range(5):
        state = presence.after_update(state, jnp.int32(update), jnp.float32(100.0))
    assert float(state.left_at) == math.inf
    np.testing.assert_array_equal(presence.per_env(state, jnp.int32(10**7)), 1.0)
