"""The original's protocols (SPEC §7) one setting away. Autonomy from the best checkpoint of
socialization (the original's ood and layouts, `--set best_checkpoint_steps=N`): which updates
are checkpoints, which is best, and that the learner kept is the one a shorter socialization
ends with. The scaling curve's separate socializations: a shorter socialization collects the
first samples of a longer one, so prefixes of one run are the separate runs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.experiments.generalization import GeneralizationConfig
from internalize.experiments.phases import (
    best_checkpoints,
    checkpoint_updates,
    socialize,
    socialize_snapshots,
)


def test_checkpoint_updates_by_hand():
    # Rollouts of 2048 steps end at 2048, 4096, ..., 12288: 10000 is first reached by the 5th.
    np.testing.assert_array_equal(checkpoint_updates(6, 2048, 10_000), [0, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(checkpoint_updates(6, 2048, 4096), [0, 1, 0, 1, 0, 1])
    assert checkpoint_updates(3, 2048, 1000).all()  # more often than a rollout: every update
    with pytest.raises(ValueError, match="every >= 1 step, got 0"):
        checkpoint_updates(3, 2048, 0)


def test_best_checkpoints_by_hand():
    returns = np.asarray([[0.1, 0.9, 0.3, 0.5, 0.8, 0.2], [0.4, 0.1, 0.2, 0.6, 0.6, 0.7]])
    # Checkpoints at updates 1, 3, 5 (0-based): the first of the best among them.
    np.testing.assert_array_equal(best_checkpoints(returns, 2048, 4096), [1, 5])
    np.testing.assert_array_equal(best_checkpoints(returns[:, :3], 2048, 4096), [1, 1])
    # No checkpoint within the run: the last update.
    np.testing.assert_array_equal(best_checkpoints(returns, 2048, 10**6), [5, 5])


@pytest.fixture(scope="module")
def with_best(small_ppo):
    """3 runs of 7 updates of 64 steps, a checkpoint every 128 steps: updates 2, 4 and 6
    (1-based), not the last; and the same runs' states after each of those updates."""
    keys = jax.vmap(jax.random.key)(jnp.arange(3))
    best = socialize(small_ppo, keys, 7, best_every=128)
    metrics, _, snapshots, _ = socialize_snapshots(small_ppo, keys, 7, (2, 4, 6, 7))
    return keys, best, metrics, snapshots


def test_the_learner_kept_is_the_best_checkpoints(with_best):
    _, (runners, metrics, dataset, _), plain_metrics, snapshots = with_best
    np.testing.assert_allclose(metrics.true_return, plain_metrics.true_return, rtol=1e-5)
    assert dataset.obs.shape[:2] == (3, 7 * 64)  # every step's data
    np.testing.assert_array_equal(runners.step, 7 * 64)  # the environments go on
    best = best_checkpoints(metrics.true_return, 64, 128)
    assert set(best.tolist()) <= {1, 3, 5}
    for seed, update in enumerate(best.tolist()):
        kept = jax.tree.map(lambda x, seed=seed: x[seed], runners.train)
        index = (1, 3, 5).index(update)
        at_best = jax.tree.map(lambda x, i=index, seed=seed: x[i, seed], snapshots.at_updates.train)
        for a, b in zip(jax.tree.leaves(kept), jax.tree.leaves(at_best), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
        last = jax.tree.map(lambda x, seed=seed: x[3, seed], snapshots.at_updates.train.params)
        moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), kept.params, last)
        assert max(jax.tree.leaves(moved)) > 1e-4  # not the last update's learner


def test_a_shorter_socialization_collects_the_first_samples_of_a_longer_one(small_ppo, with_best):
    """The original socialized once per data size of its scaling curve (SPEC §7); with the
    same seed, each of those runs collects what the first steps of the longest collect, so our
    prefixes of one run are those runs' data (the sizes rounded to whole rollouts)."""
    keys, (_, _, long, _), _, _ = with_best
    _, _, short, _ = socialize(small_ppo, keys, 3)
    for a, b in zip(jax.tree.leaves(short), jax.tree.leaves(long), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b)[:, : a.shape[1]])


def test_a_bad_checkpoint_interval_is_named():
    with pytest.raises(ValueError, match="best_checkpoint_steps must be >= 1 or None, got 0"):
        GeneralizationConfig(best_checkpoint_steps=0)


def test_retention_figure_reads_on_fig_1s_scale_too():
    """Fig. 1 of the paper plots goals per 1,000 steps / 20 (SPEC §7): 2.5 times goals per
    20-step episode. Retention's figure gives that axis beside its own."""
    from internalize.experiments.configs import make_config
    from internalize.experiments.runner import protocol
    from internalize.plots import phase_figure

    scale = protocol("retention", make_config("retention", seeds=1)).published_scale()
    label, factor = scale["goals_per_episode"]
    assert factor == 2.5 and "1,000 steps / 20" in label
    assert protocol("prosocial", make_config("prosocial", seeds=1)).published_scale() == {}
    steps = np.asarray([1.0, 2.0])
    curves = {"step": steps, "goals_per_episode": np.asarray([[0.5, 3.0], [1.0, 3.2]])}
    figure = phase_figure(
        curves, {"isr": curves}, {"goals_per_episode": "goals per episode"}, 2.0, "x", scale
    )
    figure.canvas.draw()
    ours = figure.axes[0]
    (published,) = [a for a in ours.child_axes if a.get_ylabel() == label]
    np.testing.assert_allclose(published.get_ylim(), np.asarray(ours.get_ylim()) * 2.5)
