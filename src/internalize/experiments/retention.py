"""Experiment A (SPEC §5 A): does the learner keep its values when the caregiver leaves?

For each seed, one socialization run with the caregiver present, an ISR trained on its data, then
every autonomy condition from the same socialized parameters: `oracle` (the caregiver stays),
`none` (it leaves, nothing replaces it) and `isr` (it leaves, the ISR rewards instead). Per seed
and condition, the headline numbers are means over the last 10% of the autonomy phase of goals per
episode and of the return counted with the true caregiver reward. Experiment E (`prosocial`) is
this protocol in the boulder world.
"""

import contextlib
import dataclasses
import json
from dataclasses import dataclass

import jax
import numpy as np

from internalize.experiments.phases import (
    AUTONOMY_CONDITIONS as CONDITIONS,
)
from internalize.experiments.phases import autonomy_variants, phase_steps, socialize, train_isr
from internalize.experiments.runner import Protocol, Run
from internalize.experiments.settings import ISRRewardSettings, ScheduleSettings, WorldSettings
from internalize.experiments.sharing import shared_phases
from internalize.experiments.tables import autonomy_rows, final_mean, metric_curves
from internalize.isr.train import split_sizes
from internalize.learners.ppo import PPO
from internalize.plots import phase_figure
from internalize.stats import summarize

HEADLINE = {"goals_per_episode": "goals_per_episode", "return": "true_return"}
"""results.json names -> `UpdateMetrics` fields of the per-seed headline numbers."""
ALSO_REPORTED = ("env_reward", "social_reward", "internal_reward", "learner_return")


@dataclass(frozen=True)
class AutonomyConfig(ScheduleSettings, ISRRewardSettings):
    """Settings of a protocol in which the caregiver leaves: socialization, then autonomy."""

    socialize_steps: int = 120_000
    """Environment steps with the caregiver present (rounded up to whole rollouts)."""
    autonomy_steps: int = 120_000
    """Environment steps of each autonomy condition (rounded up to whole rollouts)."""
    final_fraction: float = 0.1
    """Share of the autonomy phase, at its end, that the headline numbers average."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_positive("socialize_steps", "autonomy_steps")
        if not 0.0 < self.final_fraction <= 1.0:
            raise ValueError(f"final_fraction must lie in (0, 1], got {self.final_fraction}")


@dataclass(frozen=True)
class RetentionConfig(AutonomyConfig, WorldSettings):
    """Settings of the retention experiment."""


class Retention(Protocol):
    """Socialize, train the ISR, continue under each of `CONDITIONS`; the headline numbers are
    means over the end of autonomy. Prosocial (experiment E) is this protocol in the boulder
    world, with what a subclass changes: the world, the ISR, the names and the extra figures."""

    HEADLINE = HEADLINE
    ALSO_REPORTED = ALSO_REPORTED
    RATIO = "goals_ratio_to_oracle"
    """The results.json name of each condition's headline (the first) over oracle's."""
    LABELS = {"goals_per_episode": "goals per episode", "true_return": "return (true reward)"}
    """The curves of the figure and their labels."""
    RENDERED = ("socialized", "none", "isr", "oracle")

    def __init__(self, name: str, config: RetentionConfig) -> None:
        super().__init__(name, config)
        self.env, self.env_params = self.make_env()
        self.ppo = PPO(config.ppo, self.env, self.env_params)
        self.socialize_updates = config.ppo.num_updates(config.socialize_steps)
        self.autonomy_updates = config.ppo.num_updates(config.autonomy_steps)
        self.samples = self.socialize_updates * config.ppo.batch_size
        split_sizes(self.samples, config.isr.train_fraction)  # fails early if too few to split

    def make_env(self):
        """The environment and its parameters."""
        return self.config.make_world()

    def describe(self) -> dict:
        return {
            "conditions": list(CONDITIONS),
            "socialize_updates": self.socialize_updates,
            "autonomy_updates": self.autonomy_updates,
            "env": self.describe_env(),
        }

    def describe_env(self) -> dict:
        """The environment, as `config.json` records it."""
        return self.config.describe_world(self.env, self.env_params)

    def planned_steps(self) -> int:
        config = self.config
        autonomy_steps = [config.autonomy_steps] * len(CONDITIONS)
        return phase_steps(config.ppo, config.seeds, config.socialize_steps, *autonomy_steps)

    def phases(self, run: Run):
        return self.phases_together([self], [run])[0]

    def published_scale(self) -> dict[str, tuple[str, float]]:
        """The paper's Fig. 1 axis beside ours (SPEC §7): it logged `0.4 * goals / 20` every
        1,000 steps and labelled it value / 0.4, i.e. goals per 1,000 steps / 20, which is
        1000 / (20 * max_steps) times goals per episode (2.5 for 20-step episodes)."""
        factor = 1000.0 / (20.0 * float(self.env_params.max_steps))
        return {"goals_per_episode": ("Fig. 1's scale: goals per 1,000 steps / 20", factor)}

    def batch_key(self):
        """Runs that differ only in the ISR threshold's value and the caregiver's schedule (of
        one `ready_window`) compute their phases together: one socialization and ISR, and the
        autonomy of all in the same compiled calls (`phases.autonomy_variants`)."""
        settings = dataclasses.asdict(self.config)
        threshold, schedule = settings.pop("isr_threshold"), settings.pop("schedule")
        shape = (threshold is None, schedule["ready_window"])
        return json.dumps([type(self).__name__, settings, shape], sort_keys=True, default=repr)

    @classmethod
    def phases_together(cls, protocols: list["Retention"], runs: list[Run]) -> list:
        first, bar = protocols[0], runs[0].progress
        pairs = list(zip(protocols, runs, strict=True))
        with shared_phases() if len(protocols) > 1 else contextlib.nullcontext():
            starts = [protocol.socialize_and_train(run) for protocol, run in pairs]
        runners, _, isr = starts[0]
        variants = [(p.config.isr_threshold, p.config.schedule) for p in protocols]
        outcomes = autonomy_variants(
            first.ppo,
            runners,
            CONDITIONS,
            isr.params,
            first.autonomy_updates,
            variants,
            bar,
            isr_network=first.isr_network,
            reward_form=first.config.reward_form,
        )
        return [
            (*start, *run.timed("autonomy", outcome))
            for start, run, outcome in zip(starts, runs, outcomes, strict=True)
        ]

    def socialize_and_train(self, run: Run):
        """Socialization and the ISR: the runners, their metrics and the trained ISR."""
        bar = run.progress
        runners, social_metrics, dataset = run.timed(
            "socialization", socialize(self.ppo, run.key_runs, self.socialize_updates, bar)
        )
        isr = run.timed(
            "isr", train_isr(self.config.isr, run.key_isr, dataset, bar, network=self.isr_network)
        )
        return runners, social_metrics, isr

    @classmethod
    def condition_numbers(cls, per_seed: dict[str, dict[str, list[float]]]) -> dict:
        """The numbers computed from each condition's per-seed numbers (`conditions` of
        results.json, {condition: {name: [one per seed]}}): their summaries and the headline's
        ratio to `oracle`. A function of them alone, so runs on other seeds combine."""
        summary = {
            condition: {name: summarize(values[name]).as_dict() for name in cls.HEADLINE}
            for condition, values in per_seed.items()
        }
        headline = next(iter(cls.HEADLINE))
        oracle = summary["oracle"][headline]["mean"]
        return {
            "conditions": per_seed,
            "summary": summary,
            cls.RATIO: {
                f"{c}/oracle": summary[c][headline]["mean"] / oracle if oracle > 0 else None
                for c in ("none", "isr")
            },
        }

    def analyse(self, outcome, run: Run) -> dict:
        config = self.config
        runners, social_metrics, isr, final, autonomy_metrics = outcome
        run.save_checkpoints(
            {"socialized": runners.train.params, "autonomy": final.train.params},
            {"isr": isr.params},
        )
        names = list(self.HEADLINE.values()) + list(self.ALSO_REPORTED)
        social_curves = metric_curves(social_metrics, names)
        autonomy_curves = {
            condition: metric_curves(jax.tree.map(lambda x, i=i: x[i], autonomy_metrics), names)
            for i, condition in enumerate(CONDITIONS)
        }
        run.write_csv(
            "metrics.csv", *autonomy_rows(run.seeds, social_metrics, autonomy_metrics, CONDITIONS)
        )
        figure = phase_figure(
            social_curves,
            autonomy_curves,
            self.LABELS,
            switch_step=float(self.samples),
            title=f"{self.name.capitalize()} ({config.preset} preset, {config.seeds} seeds, "
            "mean ± SE)",
            rescaled=self.published_scale(),
        )
        run.save_figure(f"{self.name}.png", figure)
        fraction = config.final_fraction
        reported = {**self.HEADLINE, **{name: name for name in self.ALSO_REPORTED}}
        per_seed = {
            condition: {
                name: final_mean(autonomy_curves[condition][field], fraction).tolist()
                for name, field in reported.items()
            }
            for condition in CONDITIONS
        }
        num_train, num_test = split_sizes(self.samples, config.isr.train_fraction)
        return {
            **self.condition_numbers(per_seed),
            "socialization": {
                name: final_mean(social_curves[field], fraction).tolist()
                for name, field in self.HEADLINE.items()
            },
            "isr_model": {
                "train_samples": num_train,
                "test_samples": num_test,
                "train_mse": np.asarray(isr.train_mse).tolist(),
                "test_mse": np.asarray(isr.test_mse).tolist(),
                "test_mse_curve": np.asarray(isr.test_curve).tolist(),
            },
        }
