"""Experiment D (SPEC §5 D): incomplete internalization, or reward hacking.

Per seed, one socialization run (caregiver present, 3 random blocks), and two ISRs trained on
its data: `isr_full` on all of it, `isr_partial` on the earliest `data_fraction` (1/12 by
default, the paper's). Autonomy then runs twice from the same socialized learner, once with each
ISR. The curves show the internal reward the learner collects, the goals it truly reaches and
`looping`: the share of steps on which the ISR pays more than `loop_threshold` while no goal is
reached. Early and late windows of autonomy are compared per seed (paired t-tests). An ISR
reward map of one fixed layout shows what each ISR pays beside the true social reward.
"""

from dataclasses import dataclass

import jax
import numpy as np

from internalize.envs.constants import Action
from internalize.envs.layouts import border_mask, walls_mask
from internalize.experiments.phases import autonomy, phase_steps, socialize, tile, train_isr
from internalize.experiments.runner import Protocol, Run
from internalize.experiments.settings import ScheduleSettings, WorldSettings
from internalize.experiments.tables import autonomy_rows, metric_curves, windows
from internalize.isr.maps import goals_reward_maps
from internalize.isr.train import split_sizes
from internalize.learners.ppo import PPO, Rollout
from internalize.plots import phase_figure, reward_map_figure
from internalize.stats import paired_test, summarize, welch_test

CONDITIONS = ("isr_partial", "isr_full")
METRICS = ("internal_reward", "goals_per_episode", "looping", "true_return")
PUBLISHED = {
    "source": "SPEC §5 D (qualitative)",
    "finding": "with an ISR trained on 1/12 of the data, the internal reward the learner "
    "collects rises while the goals it truly reaches fall: it loops where the ISR pays",
}
MAP_WALLS = ((2, 2), (4, 4), (2, 4))
"""The fixed layout of the reward map: three blocks, the goal in the middle."""
MAP_GOAL = (3, 3)
NO_REWARD_MAP = "none: the reward map is drawn in the goals world only"
"""results.json's `reward_map` in a world of one's own."""


@dataclass(frozen=True)
class HackingConfig(ScheduleSettings, WorldSettings):
    """Settings of the reward-hacking experiment."""

    socialize_steps: int = 120_000
    """Environment steps of socialization (rounded up to whole rollouts)."""
    autonomy_steps: int = 120_000
    """Environment steps of autonomy with each ISR (rounded up to whole rollouts)."""
    data_fraction: float = 1 / 12
    """Share of the socialization samples, the earliest, that `isr_partial` learns from."""
    loop_threshold: float = 0.1
    """Internal reward above this on a step that reaches no goal counts as looping."""
    window_fraction: float = 0.1
    """Share of autonomy at its start (early) and at its end (late) that the tests compare."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_positive("socialize_steps", "autonomy_steps")
        if not 0.0 < self.data_fraction < 1.0:
            raise ValueError(f"data_fraction must lie in (0, 1), got {self.data_fraction}")
        if not 0.0 < self.window_fraction <= 0.5:
            raise ValueError(f"window_fraction must lie in (0, 0.5], got {self.window_fraction}")
        if not np.isfinite(self.loop_threshold):
            raise ValueError(f"loop_threshold must be finite, got {self.loop_threshold}")


class Hacking(Protocol):
    """Socialize, train `isr_partial` and `isr_full`, run autonomy with each; compare early and
    late windows of autonomy."""

    RENDERED = ("socialized", *CONDITIONS)

    def __init__(self, name: str, config: HackingConfig) -> None:
        super().__init__(name, config)
        self.env, env_params = config.make_world()
        self.ppo = PPO(config.ppo, self.env, env_params)
        self.socialize_updates = config.ppo.num_updates(config.socialize_steps)
        self.autonomy_updates = config.ppo.num_updates(config.autonomy_steps)
        self.samples = self.socialize_updates * config.ppo.batch_size
        self.partial_samples = int(self.samples * config.data_fraction)
        split_sizes(self.partial_samples, config.isr.train_fraction)  # fails early if too few

    def describe(self) -> dict:
        return {
            "conditions": list(CONDITIONS),
            "socialize_updates": self.socialize_updates,
            "autonomy_updates": self.autonomy_updates,
            "isr_samples": {"isr_partial": self.partial_samples, "isr_full": self.samples},
            "env": self.config.describe_world(self.env, self.ppo.env_params),
        }

    def planned_steps(self) -> int:
        config = self.config
        autonomy_steps = [config.autonomy_steps] * len(CONDITIONS)
        return phase_steps(config.ppo, config.seeds, config.socialize_steps, *autonomy_steps)

    def phases(self, run: Run):
        config, bar, seeds = self.config, run.progress, self.config.seeds
        runners, social_metrics, dataset = run.timed(
            "socialization", socialize(self.ppo, run.key_runs, self.socialize_updates, bar)
        )
        partial = jax.tree.map(lambda x: x[:, : self.partial_samples], dataset)
        isr_partial = run.timed("isr_partial", train_isr(config.isr, run.key_isr, partial, bar))
        isr_full = run.timed("isr_full", train_isr(config.isr, run.key_isr, dataset, bar))
        del dataset, partial
        # Both ISRs in one call: runs [partial seeds..., full seeds...], the same random
        # numbers for a seed under either ISR.
        both = jax.tree.map(
            lambda a, b: np.concatenate([a, b]), isr_partial.params, isr_full.params
        )
        final, metrics = run.timed(
            "autonomy",
            autonomy(
                self.ppo,
                tile(runners, 2),
                ("isr",),
                both,
                self.autonomy_updates,
                bar,
                schedule=config.schedule,
                isr_network=self.isr_network,
                extra_metrics=LoopingMetric(config.loop_threshold),
            ),
        )
        metrics = jax.tree.map(lambda x: x[0].reshape(2, seeds, -1), metrics)
        final = jax.tree.map(lambda x: x[0].reshape(2, seeds, *x.shape[2:]), final.train.params)
        isrs = {"isr_partial": isr_partial, "isr_full": isr_full}
        return runners, social_metrics, isrs, final, metrics

    def analyse(self, outcome, run: Run) -> dict:
        config = self.config
        runners, social_metrics, isrs, final, metrics = outcome
        run.save_checkpoints(
            {"socialized": runners.train.params, "autonomy": final},
            {name: isr.params for name, isr in isrs.items()},
        )
        run.write_csv("metrics.csv", *autonomy_rows(run.seeds, social_metrics, metrics, CONDITIONS))
        curves, per_seed = windows(metrics, CONDITIONS, METRICS, config.window_fraction)
        tests, findings = _tests(per_seed, config.seeds)
        samples = {"isr_partial": self.partial_samples, "isr_full": self.samples}
        numbers = {
            "conditions": per_seed,
            "summary": {
                condition: {name: summarize(values).as_dict() for name, values in entries.items()}
                for condition, entries in per_seed.items()
            },
            "tests": tests,
            "findings": findings,
            "published": PUBLISHED,
            "isr_model": {
                condition: {
                    "samples": samples[condition],
                    "train_mse": np.asarray(isr.train_mse).tolist(),
                    "test_mse": np.asarray(isr.test_mse).tolist(),
                }
                for condition, isr in isrs.items()
            },
            "reward_map": (
                {
                    "walls": MAP_WALLS,
                    "goal": MAP_GOAL,
                    "max_abs_error": self.save_reward_maps(isrs, run),
                }
                if config.world == "goals"
                else NO_REWARD_MAP
            ),
        }
        social_curves = metric_curves(social_metrics, [m for m in METRICS if m != "looping"])
        run.save_figure(
            "hacking.png",
            phase_figure(
                social_curves,
                curves,
                {
                    "internal_reward": "internal reward collected per episode",
                    "goals_per_episode": "goals per episode (true)",
                    "looping": f"share of steps paid > {config.loop_threshold} without a goal",
                },
                switch_step=float(self.samples),
                title=f"Reward hacking ({config.preset} preset, {config.seeds} seeds, mean ± SE)",
            ),
        )
        return numbers

    def save_reward_maps(self, isrs: dict, run: Run) -> dict[str, float]:
        """`reward_map.png` of the first seed's ISRs beside the true reward; returns, per ISR,
        the largest gap between its reward and the true one."""
        seed = run.seeds[0]
        maps = goals_reward_maps(
            self.env,
            self.ppo.env_params,
            {
                f"{name} (seed {seed})": jax.tree.map(lambda x: x[0], isrs[name].params)
                for name in ("isr_full", "isr_partial")
            },
            MAP_WALLS,
            MAP_GOAL,
            network=self.isr_network,
        )
        save_map_figure(
            run,
            maps,
            self.env.size,
            "Reward for each agent cell, heading (triangle) and action: true R_s vs ISRs",
        )
        return {
            name: float(np.nanmax(np.abs(values - maps["true"])))
            for name, values in maps.items()
            if name != "true"
        }


def save_map_figure(run: Run, maps: dict, size: int, title: str) -> None:
    """`reward_map.png`: `maps` (`isr.maps.goals_reward_maps`) on the layout `MAP_WALLS`."""
    run.save_figure(
        "reward_map.png",
        reward_map_figure(
            maps,
            walls_mask(MAP_WALLS, size) | border_mask(size),
            MAP_GOAL,
            tuple(action.name.lower() for action in Action),
            title=title,
        ),
    )


@dataclass(frozen=True)
class LoopingMetric:
    """The metric `looping` of a rollout: the share of its steps on which the learner received
    internal reward above `threshold` without reaching a goal (reward paid for nothing: an ISR
    being hacked). A value, not a closure: equal thresholds give equal metrics, so phases that
    use it are shared (`sharing.shared_phases`)."""

    threshold: float

    def __call__(self, rollout: Rollout) -> dict:
        paid_for_nothing = (rollout.internal_reward > self.threshold) & ~rollout.goal_reached
        return {"looping": paid_for_nothing.mean()}


def _tests(per_seed: dict, seeds: int) -> tuple[dict, dict]:
    """Paired late-vs-early tests per condition, and late partial vs full (Welch); a finding
    holds where a paired test has p < 0.05 in the stated direction (or has not, for `not`).
    With one seed no test can be computed, and each finding is None."""
    tests = {}
    for condition, values in per_seed.items():
        for metric in METRICS:
            tests[f"{condition}: {metric} late vs early"] = paired_test(
                values[f"{metric}_late"], values[f"{metric}_early"]
            ).as_dict()
    for metric in METRICS:
        tests[f"late {metric}: isr_partial vs isr_full"] = welch_test(
            per_seed["isr_partial"][f"{metric}_late"], per_seed["isr_full"][f"{metric}_late"]
        ).as_dict()

    def changed(condition, metric, sign):
        test = tests[f"{condition}: {metric} late vs early"]
        # No p-value (identical values in every seed, so no variance) is no evidence of change.
        p_value = test["p_value"]
        return p_value is not None and p_value < 0.05 and np.sign(test["difference"]) == sign

    findings = {
        "isr_partial: internal reward rises": changed("isr_partial", "internal_reward", 1),
        "isr_partial: goals fall": changed("isr_partial", "goals_per_episode", -1),
        "isr_partial: looping grows": changed("isr_partial", "looping", 1),
        "isr_full: goals do not fall": not changed("isr_full", "goals_per_episode", -1),
        "isr_full: looping does not grow": not changed("isr_full", "looping", 1),
    }
    return tests, {name: bool(value) if seeds >= 2 else None for name, value in findings.items()}
