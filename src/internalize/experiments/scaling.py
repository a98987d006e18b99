"""Experiment C (SPEC §5 C): how the ISR's error falls with the socialization data it learns from.

Per seed, one socialization run (caregiver present, 3 random blocks); then, for each sample
count N, an ISR trained on the first N socialization samples (time order, so small N means
early, clumsy behaviour), split 90/10 in time into train and test as usual. Reported per count
and seed: the training and test MSE. The published counts are training samples, 90% of 5, 10,
15, 20, 40 and 59 rollouts of 2048 steps; the defaults here are those same socialization counts.
"""

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np

from internalize.envs.goals import GoalsEnv
from internalize.experiments.common import (
    ExperimentConfig,
    RunDirectory,
    open_progress,
    save_checkpoints,
    versions,
)
from internalize.experiments.phases import phase_steps, seed_keys, socialize, train_isr
from internalize.isr.train import split_sizes
from internalize.learners.ppo import PPO
from internalize.stats import paired_test, summarize

PUBLISHED = {
    "source": "SPEC §5 C (means over 10 seeds of the ISR's test MSE; no train/test gap)",
    "train_samples": [9_216, 18_432, 27_648, 36_864, 73_728, 108_748],
    "test_mse": [1.25e-3, 8.7e-4, 4.8e-4, 2.8e-4, 2.1e-5, 5.5e-6],
}


@dataclass(frozen=True)
class ScalingConfig(ExperimentConfig):
    """Settings of the ISR data-scaling experiment."""

    socialize_steps: int = 120_000
    """Environment steps of socialization (rounded up to whole rollouts)."""
    n_blocks: int = 3
    """Random wall blocks per layout."""
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


def planned_steps(config: ScalingConfig) -> int:
    """Environment steps the experiment takes (for progress bars)."""
    return phase_steps(config.ppo, config.seeds, config.socialize_steps)


def run_scaling(config: ScalingConfig, out: str | Path, progress=True) -> dict:
    """Run the experiment into the new directory `out`; returns what `results.json` holds."""
    started = time.perf_counter()
    ppo_config, isr_config = config.ppo, config.isr
    env = GoalsEnv()
    ppo = PPO(ppo_config, env, env.make_params(n_blocks=config.n_blocks))
    socialize_updates = ppo_config.num_updates(config.socialize_steps)
    run_dir = RunDirectory(out)
    resolved = {
        "experiment": "scaling",
        **dataclasses.asdict(config),
        "seed_list": config.seed_list,
        "socialize_updates": socialize_updates,
        "ppo": dataclasses.asdict(ppo_config),
        "isr": dataclasses.asdict(isr_config),
        "env": {"size": env.size, "n_blocks": config.n_blocks},
    }
    run_dir.write_json("config.json", resolved)
    run_dir.write_json("versions.json", versions())

    key_runs, key_isr = seed_keys(config.seed_list)
    bar = open_progress(progress, planned_steps(config))
    timings = {}
    train_mse, test_mse = [], []
    try:
        runners, _, dataset, timing = socialize(ppo, key_runs, socialize_updates, bar)
        timings["socialization"] = timing.as_dict()
        isrs = {}
        for count in config.sample_counts:
            subset = jax.tree.map(lambda x, n=count: x[:, :n], dataset)
            isr, timing = train_isr(isr_config, key_isr, subset, bar)
            timings[f"isr_{count}"] = timing.as_dict()
            isrs[f"isr_{count}"] = isr.params
            train_mse.append(np.asarray(isr.train_mse, np.float64))
            test_mse.append(np.asarray(isr.test_mse, np.float64))
    finally:
        bar.close()
    train_mse, test_mse = np.stack(train_mse), np.stack(test_mse)  # [counts, seeds]
    save_checkpoints(run_dir, {"socialized": runners.train.params}, isrs)

    counts = list(config.sample_counts)
    train_samples = [split_sizes(n, isr_config.train_fraction)[0] for n in counts]
    rows = [
        [seed, count, train_samples[i], train_mse[i, s], test_mse[i, s]]
        for s, seed in enumerate(config.seed_list)
        for i, count in enumerate(counts)
    ]
    run_dir.write_csv(
        "metrics.csv", ["seed", "samples", "train_samples", "train_mse", "test_mse"], rows
    )

    # The slope of log10 test MSE against log10 training samples, one per seed.
    log_samples = np.log10(train_samples)
    slopes = np.polyfit(log_samples, np.log10(test_mse), 1)[0]
    ratio = test_mse / train_mse
    results = {
        "experiment": "scaling",
        "preset": config.preset,
        "seeds": config.seed_list,
        "sample_counts": counts,
        "train_samples": train_samples,
        "per_seed": {"train_mse": train_mse.T.tolist(), "test_mse": test_mse.T.tolist()},
        "summary": {
            str(count): {
                "train_mse": summarize(train_mse[i]).as_dict(),
                "test_mse": summarize(test_mse[i]).as_dict(),
                "test_over_train": summarize(ratio[i]).as_dict(),
            }
            for i, count in enumerate(counts)
        },
        "tests": {
            "log-log slope": {
                "per_seed": slopes.tolist(),
                "summary": summarize(slopes).as_dict(),
                "slope below 0": (
                    paired_test(slopes, np.zeros_like(slopes), alternative="less").as_dict()
                    if config.seeds >= 2
                    else None
                ),
            },
            "smallest vs largest count": (
                paired_test(
                    np.log10(test_mse[0]), np.log10(test_mse[-1]), alternative="greater"
                ).as_dict()
                if config.seeds >= 2
                else None
            ),
            "max test/train ratio of a count mean": float(
                np.max(
                    np.maximum(
                        test_mse.mean(1) / train_mse.mean(1), train_mse.mean(1) / test_mse.mean(1)
                    )
                )
            ),
        },
        "published": PUBLISHED,
        "config": resolved,
        "versions": versions(),
        "timings": {**timings, "total_s": time.perf_counter() - started},
    }
    from internalize.plots import scaling_figure

    run_dir.save_figure(
        "scaling.png",
        scaling_figure(
            np.asarray(train_samples),
            train_mse,
            test_mse,
            PUBLISHED,
            title=f"ISR data scaling ({config.preset} preset, {config.seeds} seeds, mean ± SE)",
        ),
    )
    run_dir.finish(results)
    return results
