"""Experiment A (SPEC §5 A): does the learner keep its values when the caregiver leaves?

For each seed, one socialization run with the caregiver present, an ISR trained on its data, then
every autonomy condition from the same socialized parameters: `oracle` (the caregiver stays),
`none` (it leaves, nothing replaces it) and `isr` (it leaves, the ISR rewards instead). Per seed
and condition, the headline numbers are means over the last 10% of the autonomy phase of goals per
episode and of the return counted with the true caregiver reward.
"""

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np

from internalize.envs.base import load_env
from internalize.experiments.common import (
    ExperimentConfig,
    RunDirectory,
    open_progress,
    save_checkpoints,
    versions,
)
from internalize.experiments.phases import (
    AUTONOMY_CONDITIONS as CONDITIONS,
)
from internalize.experiments.phases import (
    autonomy,
    autonomy_rows,
    final_mean,
    metric_curves,
    phase_steps,
    seed_keys,
    socialize,
    train_isr,
)
from internalize.isr.train import split_sizes
from internalize.learners.ppo import PPO
from internalize.plots import phase_figure
from internalize.social.caregiver import ScheduleConfig
from internalize.stats import summarize

HEADLINE = {"goals_per_episode": "goals_per_episode", "return": "true_return"}
"""results.json names -> `UpdateMetrics` fields of the per-seed headline numbers."""
ALSO_REPORTED = ("env_reward", "social_reward", "internal_reward", "learner_return")


@dataclass(frozen=True)
class RetentionConfig(ExperimentConfig):
    """Settings of the retention experiment."""

    socialize_steps: int = 120_000
    """Environment steps with the caregiver present (rounded up to whole rollouts)."""
    autonomy_steps: int = 120_000
    """Environment steps of each autonomy condition (rounded up to whole rollouts)."""
    world: str = "goals"
    """The environment: `goals` (SPEC §2's world) or `package.module:make_env`, a function that
    returns an environment of the protocol (`internalize.envs.base`; examples/hazard_world.py)."""
    n_blocks: int = 3
    """Random wall blocks per layout (the goals world)."""
    final_fraction: float = 0.1
    """Share of the autonomy phase, at its end, that the headline numbers average."""
    schedule: ScheduleConfig = ScheduleConfig()
    """How the caregiver leaves when socialization ends (`schedule=fading`, ...)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_positive("socialize_steps", "autonomy_steps")
        if not 0.0 < self.final_fraction <= 1.0:
            raise ValueError(f"final_fraction must lie in (0, 1], got {self.final_fraction}")


def planned_steps(config: RetentionConfig) -> int:
    """Environment steps the experiment takes (for progress bars)."""
    autonomy_steps = [config.autonomy_steps] * len(CONDITIONS)
    return phase_steps(config.ppo, config.seeds, config.socialize_steps, *autonomy_steps)


def run_retention(config: RetentionConfig, out: str | Path, progress=True) -> dict:
    """Run the experiment into the new directory `out`; returns what `results.json` holds."""
    started = time.perf_counter()
    ppo_config, isr_config = config.ppo, config.isr
    env = load_env(config.world)
    goals = config.world == "goals"
    env_params = env.make_params(n_blocks=config.n_blocks) if goals else env.make_params()
    ppo = PPO(ppo_config, env, env_params)
    socialize_updates = ppo_config.num_updates(config.socialize_steps)
    autonomy_updates = ppo_config.num_updates(config.autonomy_steps)
    samples = socialize_updates * ppo_config.batch_size
    split_sizes(samples, isr_config.train_fraction)  # fails early if too few to split
    run_dir = RunDirectory(out)
    resolved = {
        "experiment": "retention",
        **dataclasses.asdict(config),
        "seed_list": config.seed_list,
        "conditions": list(CONDITIONS),
        "socialize_updates": socialize_updates,
        "autonomy_updates": autonomy_updates,
        "ppo": dataclasses.asdict(ppo_config),
        "isr": dataclasses.asdict(isr_config),
        "env": {
            "world": config.world,
            **({"size": env.size, "n_blocks": config.n_blocks} if goals else {}),
            "obs_shape": list(env.obs_shape),
            "num_actions": env.num_actions,
            "max_steps": int(env_params.max_steps),
        },
    }
    run_dir.write_json("config.json", resolved)
    run_dir.write_json("versions.json", versions())

    seeds = config.seeds
    key_runs, key_isr = seed_keys(config.seed_list)
    bar = open_progress(progress, planned_steps(config))
    try:
        runners, social_metrics, dataset, social_time = socialize(
            ppo, key_runs, socialize_updates, bar
        )
        isr, isr_time = train_isr(isr_config, key_isr, dataset, bar)
        del dataset
        final, autonomy_metrics, autonomy_time = autonomy(
            ppo, runners, CONDITIONS, isr.params, autonomy_updates, bar, schedule=config.schedule
        )
    finally:
        bar.close()

    save_checkpoints(
        run_dir,
        {"socialized": runners.train.params, "autonomy": final.train.params},
        {"isr": isr.params},
    )
    names = list(HEADLINE.values()) + list(ALSO_REPORTED)
    social_curves = metric_curves(social_metrics, names)
    autonomy_curves = {
        condition: metric_curves(jax.tree.map(lambda x, i=i: x[i], autonomy_metrics), names)
        for i, condition in enumerate(CONDITIONS)
    }
    run_dir.write_csv(
        "metrics.csv",
        *autonomy_rows(config.seed_list, social_metrics, autonomy_metrics, CONDITIONS),
    )
    figure = phase_figure(
        social_curves,
        autonomy_curves,
        {"goals_per_episode": "goals per episode", "true_return": "return (true reward)"},
        switch_step=float(socialize_updates * ppo_config.batch_size),
        title=f"Retention ({config.preset} preset, {seeds} seeds, mean ± SE)",
    )
    run_dir.save_figure("retention.png", figure)

    fraction = config.final_fraction
    per_seed = {
        condition: {
            name: final_mean(autonomy_curves[condition][field], fraction).tolist()
            for name, field in {**HEADLINE, **{n: n for n in ALSO_REPORTED}}.items()
        }
        for condition in CONDITIONS
    }
    summary = {
        condition: {name: summarize(values[name]).as_dict() for name in HEADLINE}
        for condition, values in per_seed.items()
    }
    oracle_goals = summary["oracle"]["goals_per_episode"]["mean"]
    ratios = {
        f"{condition}/oracle": (
            summary[condition]["goals_per_episode"]["mean"] / oracle_goals
            if oracle_goals > 0
            else None
        )
        for condition in ("none", "isr")
    }
    num_train, num_test = split_sizes(samples, isr_config.train_fraction)
    results = {
        "experiment": "retention",
        "preset": config.preset,
        "seeds": config.seed_list,
        "conditions": per_seed,
        "summary": summary,
        "goals_ratio_to_oracle": ratios,
        "socialization": {
            name: final_mean(social_curves[field], fraction).tolist()
            for name, field in HEADLINE.items()
        },
        "isr_model": {
            "train_samples": num_train,
            "test_samples": num_test,
            "train_mse": np.asarray(isr.train_mse).tolist(),
            "test_mse": np.asarray(isr.test_mse).tolist(),
            "test_mse_curve": np.asarray(isr.test_curve).tolist(),
        },
        "config": resolved,
        "versions": versions(),
        "timings": {
            "socialization": social_time.as_dict(),
            "isr": isr_time.as_dict(),
            "autonomy": autonomy_time.as_dict(),
            "total_s": time.perf_counter() - started,
        },
    }
    run_dir.finish(results)
    return results
