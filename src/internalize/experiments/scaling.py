"""Experiment C (SPEC §5 C): how the ISR's error falls with the socialization data it learns from.

Per seed, one socialization run (caregiver present, 3 random blocks); then, for each sample
count N, an ISR trained on the first N socialization samples (time order, so small N means
early, clumsy behaviour), split 90/10 in time into train and test as usual. Reported per count
and seed: the training and test MSE. The published counts are training samples, 90% of 5, 10,
15, 20, 40 and 59 rollouts of 2048 steps; the defaults here are those same socialization counts.
"""

from dataclasses import dataclass

import jax
import numpy as np

from internalize.experiments.phases import phase_steps, socialize, train_isr
from internalize.experiments.runner import Protocol, Run
from internalize.experiments.settings import WorldSettings
from internalize.isr.train import split_sizes
from internalize.learners.ppo import PPO
from internalize.plots import scaling_figure
from internalize.stats import paired_test, summarize

PUBLISHED = {
    "source": "SPEC §5 C (means over 10 seeds of the ISR's test MSE; no train/test gap)",
    "train_samples": [9_216, 18_432, 27_648, 36_864, 73_728, 108_748],
    "test_mse": [1.25e-3, 8.7e-4, 4.8e-4, 2.8e-4, 2.1e-5, 5.5e-6],
}


@dataclass(frozen=True)
class ScalingConfig(WorldSettings):
    """Settings of the ISR data-scaling experiment."""

    socialize_steps: int = 120_000
    """Environment steps of socialization (rounded up to whole rollouts)."""
    sample_counts: tuple[int, ...] = (10_240, 20_480, 30_720, 40_960, 81_920, 120_832)
    """Socialization samples each ISR learns from (the first ones, in time order); each must be
    at most the samples socialization collects."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_positive("socialize_steps")
        if len(self.sample_counts) < 2:
            raise ValueError(f"sample_counts needs at least two counts, got {self.sample_counts}")
        if list(self.sample_counts) != sorted(set(self.sample_counts)):
            raise ValueError(f"sample_counts must increase strictly, got {self.sample_counts}")
        train_fraction = self.isr.train_fraction
        for count in self.sample_counts:
            split_sizes(count, train_fraction)  # each count must split into train and test
        samples = self.ppo.num_updates(self.socialize_steps)
        samples *= self.ppo.batch_size
        if self.sample_counts[-1] > samples:
            raise ValueError(
                f"sample count {self.sample_counts[-1]} exceeds the {samples} samples that "
                f"{self.socialize_steps} socialization steps collect"
            )


class Scaling(Protocol):
    """Socialize once per seed, then train one ISR on each count of the first samples."""

    def __init__(self, name: str, config: ScalingConfig) -> None:
        super().__init__(name, config)
        self.env, env_params = config.make_world()
        self.ppo = PPO(config.ppo, self.env, env_params)
        self.socialize_updates = config.ppo.num_updates(config.socialize_steps)

    def describe(self) -> dict:
        return {
            "socialize_updates": self.socialize_updates,
            "env": self.config.describe_world(self.env, self.ppo.env_params),
        }

    def planned_steps(self) -> int:
        return phase_steps(self.config.ppo, self.config.seeds, self.config.socialize_steps)

    def phases(self, run: Run):
        config, bar = self.config, run.progress
        runners, _, dataset = run.timed(
            "socialization", socialize(self.ppo, run.key_runs, self.socialize_updates, bar)
        )
        isrs = {}
        for count in config.sample_counts:
            subset = jax.tree.map(lambda x, n=count: x[:, :n], dataset)
            isrs[count] = run.timed(f"isr_{count}", train_isr(config.isr, run.key_isr, subset, bar))
        return runners, isrs

    def analyse(self, outcome, run: Run) -> dict:
        config = self.config
        runners, isrs = outcome
        run.save_checkpoints(
            {"socialized": runners.train.params},
            {f"isr_{count}": isr.params for count, isr in isrs.items()},
        )
        # [counts, seeds]
        train_mse = np.stack([np.asarray(isr.train_mse, np.float64) for isr in isrs.values()])
        test_mse = np.stack([np.asarray(isr.test_mse, np.float64) for isr in isrs.values()])
        counts = list(config.sample_counts)
        train_samples = [split_sizes(n, config.isr.train_fraction)[0] for n in counts]
        rows = [
            [seed, count, train_samples[i], train_mse[i, s], test_mse[i, s]]
            for s, seed in enumerate(run.seeds)
            for i, count in enumerate(counts)
        ]
        run.write_csv(
            "metrics.csv", ["seed", "samples", "train_samples", "train_mse", "test_mse"], rows
        )
        numbers = {
            "sample_counts": counts,
            "train_samples": train_samples,
            "per_seed": {"train_mse": train_mse.T.tolist(), "test_mse": test_mse.T.tolist()},
            "summary": {
                str(count): {
                    "train_mse": summarize(train_mse[i]).as_dict(),
                    "test_mse": summarize(test_mse[i]).as_dict(),
                    "test_over_train": summarize(test_mse[i] / train_mse[i]).as_dict(),
                }
                for i, count in enumerate(counts)
            },
            "tests": _tests(np.asarray(train_samples), train_mse, test_mse),
            "published": PUBLISHED,
        }
        run.save_figure(
            "scaling.png",
            scaling_figure(
                np.asarray(train_samples),
                train_mse,
                test_mse,
                PUBLISHED,
                title=f"ISR data scaling ({config.preset} preset, {config.seeds} seeds, mean ± SE)",
            ),
        )
        return numbers


def _tests(train_samples: np.ndarray, train_mse: np.ndarray, test_mse: np.ndarray) -> dict:
    """Does the test error fall with the data (the slope of log10 test MSE against log10
    training samples, one per seed), and is there a gap between training and test error?
    Float[counts, seeds] errors."""
    slopes = np.polyfit(np.log10(train_samples), np.log10(test_mse), 1)[0]
    train_means, test_means = train_mse.mean(1), test_mse.mean(1)
    return {
        "log-log slope": {
            "per_seed": slopes.tolist(),
            "summary": summarize(slopes).as_dict(),
            "slope below 0": paired_test(
                slopes, np.zeros_like(slopes), alternative="less"
            ).as_dict(),
        },
        "smallest vs largest count": paired_test(
            np.log10(test_mse[0]), np.log10(test_mse[-1]), alternative="greater"
        ).as_dict(),
        "max test/train ratio of a count mean": float(
            np.max(np.maximum(test_means / train_means, train_means / test_means))
        ),
    }
