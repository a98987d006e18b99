import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.social.caregiver import (
    Presence,
    constant_presence,
    fading,
    learner_reward,
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
