"""`internalize.load`: a run's trained learners and ISRs, as Stable-Baselines3 users expect them,
read from the tiny `all` run."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import internalize
from internalize.experiments.common import load_checkpoints


def observations(trained, count=64):
    """`count` first observations of the policy's own world."""
    ppo = trained.policy.ppo
    keys = jax.random.split(jax.random.key(7), count)
    states = jax.vmap(ppo.env.reset, in_axes=(0, None))(keys, ppo.env_params)
    return np.asarray(jax.vmap(ppo.env.observe)(states))


@pytest.mark.parametrize(
    ("experiment", "conditions"),
    [
        ("retention", ["socialized", "oracle", "none", "isr"]),
        ("hacking", ["socialized", "isr_partial", "isr_full"]),
        ("prosocial", ["socialized", "oracle", "none", "isr"]),
        ("layouts", ["socialized", "frozen", "oracle:plus", "isr:four_rooms"]),
        ("ood", ["socialized", "frozen", "oracle", "isr"]),
    ],
)
def test_every_saved_policy_loads_and_acts(all_run, experiment, conditions):
    """Each condition's learner of each seed loads with the run's network; its parameters are
    the checkpoint's, its greedy actions the argmax of its logits; learners of other conditions
    or seeds act otherwise somewhere."""
    run = all_run / experiment
    seen = {}
    for condition in conditions:
        for seed in (1234, 1235):
            trained = internalize.load(run, condition=condition, seed=seed)
            assert (trained.experiment, trained.condition, trained.seed) == (
                experiment,
                condition,
                seed,
            )
            obs = observations(trained)
            logits = trained.policy.logits(obs)
            assert logits.shape == (len(obs), trained.policy.ppo.env.num_actions)
            actions = trained.predict(obs)
            assert np.array_equal(actions, logits.argmax(-1))
            # One observation, unbatched: the same logits (to rounding: a batch of one may take
            # another kernel) and a scalar action.
            np.testing.assert_allclose(
                trained.policy.logits(obs[0]), logits[0], rtol=1e-5, atol=1e-6
            )
            assert np.shape(trained.predict(obs[0])) == ()
            sampled = trained.predict(obs, deterministic=False, key=jax.random.key(0))
            assert sampled.shape == actions.shape and sampled.max() < logits.shape[-1]
            seen[condition, seed] = logits
    assert not np.allclose(seen[conditions[0], 1234], seen[conditions[-1], 1234])
    assert not np.allclose(seen[conditions[-1], 1234], seen[conditions[-1], 1235])


def test_the_parameters_are_the_checkpoints(all_run):
    run = all_run / "retention"
    trained = internalize.load(run, condition="none", seed=1235)
    saved = load_checkpoints(run)["policy"]["autonomy"]
    mine = jax.tree_util.tree_leaves_with_path(trained.policy.params)
    kept = dict(
        (jax.tree_util.keystr(path), leaf)
        for path, leaf in jax.tree_util.tree_leaves_with_path(saved)
    )
    for path, leaf in mine:
        assert np.array_equal(
            np.asarray(leaf), kept[jax.tree_util.keystr(path)][1, 1]
        )  # none, seed 2


def test_the_isr_goes_with_its_condition(all_run):
    """Retention's one ISR comes with every condition; hacking's each condition's own; the
    reward is the network's on (obs, action), and the two ISRs of hacking differ."""
    retention = internalize.load(all_run / "retention", condition="oracle")
    obs = observations(retention)
    actions = retention.predict(obs)
    reward = retention.isr.reward(obs, actions)
    assert reward.shape == actions.shape and np.isfinite(reward).all()
    direct = retention.isr.network.apply(
        retention.isr.params, jnp.asarray(obs), jnp.asarray(actions)
    )
    np.testing.assert_allclose(reward, np.asarray(direct), rtol=1e-6)
    partial = internalize.load(all_run / "hacking", condition="isr_partial")
    full = internalize.load(all_run / "hacking", condition="isr_full")
    assert not np.allclose(partial.isr.reward(obs, actions), full.isr.reward(obs, actions))
    assert internalize.load(all_run / "hacking", condition="socialized").isr is None
    named = internalize.load(all_run / "hacking", condition="socialized", isr="isr_full")
    np.testing.assert_array_equal(named.isr.reward(obs, actions), full.isr.reward(obs, actions))


@pytest.mark.parametrize(
    ("where", "settings", "said"),
    [
        ("", {}, "is an `all` run: load one of its experiments"),
        ("retention", {"condition": "isr_partial"}, "has no policy 'isr_partial'; it has"),
        ("retention", {"seed": 99}, r"has no seed 99; its seeds: \[1234, 1235\]"),
        ("retention", {"isr": "isr_full"}, "has no ISR 'isr_full'; it has \\['isr'\\]"),
        ("scaling/nowhere", {}, "is not a run directory"),
    ],
)
def test_what_cannot_be_loaded_is_named(all_run, where, settings, said):
    with pytest.raises(ValueError, match=said):
        internalize.load(all_run / where, **settings)
