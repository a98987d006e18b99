"""Experiment B (SPEC §5 B): do internalized values carry over to a task never seen before?

Per seed, one socialization run on the goals gridworld with 1 random block (caregiver present),
and an ISR trained on its data. From there, three conditions meet each test task (5 random
blocks for `ood`; each of the five hand-picked layouts for `layouts`):

- `frozen`: the socialized learner trains a further `frozen_steps` on the 1-block task (caregiver
  present, as in the original), then plays the test task without learning;
- `oracle`: it learns `transfer_steps` on the test task with the caregiver present;
- `isr`: it learns `transfer_steps` on the test task with the ISR instead of the caregiver.

Each condition is then evaluated on the test task without learning: the mean true return
(R_e + R_s) over `eval_episodes` episodes, the same episodes (keys) for every condition of a seed.
One socialization feeds every task and condition.
"""

import dataclasses
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from internalize.envs.goals import GoalsEnv
from internalize.envs.layouts import NAMED_LAYOUTS
from internalize.experiments.compiled import Timing, compiled_call
from internalize.experiments.phases import (
    autonomy,
    best_checkpoints,
    phase_steps,
    socialize,
    tile,
    train_isr,
)
from internalize.experiments.runner import Protocol, Run
from internalize.experiments.settings import ISRRewardSettings, ScheduleSettings
from internalize.experiments.tables import metric_curves, metric_rows
from internalize.isr.train import split_sizes
from internalize.learners.ppo import METRIC_NAMES, PPO, over_runs
from internalize.plots import generalization_figure
from internalize.stats import fixed_effect_test, summarize, welch_test

CONDITIONS = ("frozen", "oracle", "isr")
PAIRS = (("isr", "frozen"), ("isr", "oracle"), ("oracle", "frozen"))
"""The conditions compared, first minus second."""
RANDOM_TASK = "random"
"""The task name of `test_blocks` random blocks per layout."""
LAYOUT_TASKS = tuple(NAMED_LAYOUTS)
CURVES = ("true_return", "goals_per_episode", "internal_reward")

PUBLISHED = {
    "ood": {
        "source": "SPEC §5 B (10 seeds, mean ± SEM of the evaluation return on 5 random blocks)",
        "return": {
            "frozen": {"mean": 0.541, "se": 0.026},
            "isr": {"mean": 0.630, "se": 0.027},
            "oracle": {"mean": 0.672, "se": 0.031},
        },
        "tests": {"isr vs frozen": {"p_value": 0.029}, "isr vs oracle": {"p_value": 0.32}},
    },
    "layouts": {
        "source": "SPEC §5 B (pooled over the five layouts, layout as a fixed effect)",
        "tests": {"isr vs frozen": {"p_value": "< 0.01"}, "isr vs oracle": {"p_value": 0.25}},
        "note": "four rooms is at ceiling for every condition",
    },
}


@dataclass(frozen=True)
class GeneralizationConfig(ScheduleSettings, ISRRewardSettings):
    """Settings of the generalization experiments (`ood` and `layouts`)."""

    tasks: tuple[str, ...] = (RANDOM_TASK,)
    """Test tasks: `random` (`test_blocks` random blocks) and/or names of hand-picked layouts."""
    socialize_steps: int = 120_000
    """Environment steps of socialization on the training task."""
    frozen_steps: int = 120_000
    """Further steps of the `frozen` learner on the training task (caregiver present)."""
    transfer_steps: int = 240_000
    """Steps of `oracle` and `isr` learning on each test task."""
    socialize_blocks: int = 1
    """Random wall blocks of the training task."""
    test_blocks: int = 5
    """Random wall blocks of the `random` test task."""
    eval_episodes: int = 100
    """Episodes of the evaluation without learning, per seed, condition and task."""
    greedy: bool = False
    """Evaluate with the policy's most likely action instead of sampled actions."""
    isr_threshold: float | None = 0.2
    """The ISR pays only where its prediction exceeds this (the original's 0.2); None pays all."""
    best_checkpoint_steps: int | None = None
    """None: `frozen` and the transfers start from the end of socialization (the paper's); N:
    from each seed's best checkpoint of socialization, one every N environment steps, by the
    mean return of its last rollout (the original's ood and layouts: 10000; SPEC §7). The ISR
    learns from every socialization step either way."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_positive("socialize_steps", "frozen_steps", "transfer_steps", "eval_episodes")
        if not self.tasks:
            raise ValueError("tasks is empty: give `random` and/or layout names")
        if self.best_checkpoint_steps is not None and self.best_checkpoint_steps < 1:
            raise ValueError(
                f"best_checkpoint_steps must be >= 1 or None, got {self.best_checkpoint_steps}"
            )
        known = (RANDOM_TASK, *LAYOUT_TASKS)
        unknown = [task for task in self.tasks if task not in known]
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; known: {list(known)}")
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"tasks repeat: {list(self.tasks)}")
        GoalsEnv().check_blocks(self.socialize_blocks)
        GoalsEnv().check_blocks(self.test_blocks)


def _task_params(env: GoalsEnv, config: GeneralizationConfig):
    """The test tasks' parameters stacked along a leading task axis."""
    params = [
        env.make_params(n_blocks=config.test_blocks)
        if task == RANDOM_TASK
        else env.make_params(layout=task)
        for task in config.tasks
    ]
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *params)


class Generalization(Protocol):
    """Socialize on the training task, train the ISR and the `frozen` learner, move every seed
    to every test task and learn there under `oracle` and `isr`; evaluate all three. With
    several tasks the results also pool them, the task as a fixed effect."""

    def __init__(self, name: str, config: GeneralizationConfig) -> None:
        super().__init__(name, config)
        self.env = GoalsEnv()
        ppo_config = config.ppo
        self.ppo = PPO(ppo_config, self.env, self.env.make_params(n_blocks=config.socialize_blocks))
        self.updates = {
            "socialize": ppo_config.num_updates(config.socialize_steps),
            "frozen": ppo_config.num_updates(config.frozen_steps),
            "transfer": ppo_config.num_updates(config.transfer_steps),
        }
        samples = self.updates["socialize"] * ppo_config.batch_size
        split_sizes(samples, config.isr.train_fraction)  # fails early if too few to split

    def describe(self) -> dict:
        return {
            "conditions": list(CONDITIONS),
            "updates": self.updates,
            "env": {"size": self.env.size, "max_steps": int(self.ppo.env_params.max_steps)},
        }

    RENDERED = CONDITIONS
    """After the socialized learner (one GIF per test task)."""

    @classmethod
    def render_world(cls, config: dict) -> tuple[Any, dict]:
        env, max_steps = GoalsEnv(), config.get("env", {}).get("max_steps")
        tasks = {
            task: (
                env.make_params(n_blocks=config["test_blocks"], max_steps=max_steps)
                if task == RANDOM_TASK
                else env.make_params(layout=task, max_steps=max_steps)
            )
            for task in config["tasks"]
        }
        return env, tasks

    @classmethod
    def render_panels(cls, config: dict, task: Any) -> list[tuple[str, str]]:
        several = len(config["tasks"]) > 1
        return [("socialized", "socialized")] + [
            (c, f"{c}:{task}" if several and c != "frozen" else c) for c in cls.RENDERED
        ]

    @classmethod
    def render_label(cls, name: str, config: dict, task: Any) -> tuple[str, str]:
        if list(config["tasks"]) == [RANDOM_TASK]:
            return name, f"{name}: {config['test_blocks']} blocks"
        return super().render_label(name, config, task)

    @classmethod
    def saved_policies(cls, config: dict) -> dict[str, tuple[str, tuple[int, ...], int]]:
        """The socialized and frozen learners, and each transfer condition's on each task
        (`isr`, or `isr:plus` where there are several tasks): runs task-major [tasks * seeds]."""
        found = {"socialized": ("socialized", (), 0), "frozen": ("frozen", (), 0)}
        tasks, seeds = config.get("tasks", []), len(config.get("seed_list", []))
        transfer = [c for c in config.get("conditions", []) if c != "frozen"]
        for t, task in enumerate(tasks):
            for c, condition in enumerate(transfer):
                name = condition if len(tasks) == 1 else f"{condition}:{task}"
                found[name] = ("transfer", (c,), t * seeds)
        return found

    def planned_steps(self) -> int:
        config = self.config
        transfers = [config.transfer_steps] * 2 * len(config.tasks)  # oracle and isr on each
        steps = (config.socialize_steps, config.frozen_steps, *transfers)
        return phase_steps(config.ppo, config.seeds, *steps)

    def phases(self, run: Run):
        config, ppo, bar = self.config, self.ppo, run.progress
        seeds, tasks = config.seeds, len(config.tasks)
        runners, social_metrics, dataset = run.timed(
            "socialization",
            socialize(
                ppo, run.key_runs, self.updates["socialize"], bar, config.best_checkpoint_steps
            ),
        )
        isr = run.timed("isr", train_isr(config.isr, run.key_isr, dataset, bar))
        del dataset
        frozen, frozen_metrics = run.timed(
            "frozen", autonomy(ppo, runners, ("oracle",), None, self.updates["frozen"], bar)
        )
        # Every seed meets every task: runs are task-major, [tasks * seeds].
        task_params = jax.tree.map(
            lambda x: jnp.repeat(x, seeds, axis=0), _task_params(self.env, config)
        )
        task_index = jnp.repeat(jnp.arange(tasks), seeds)
        move_keys = jax.vmap(jax.random.fold_in)(tile(run.key_runs, tasks), task_index)
        moved = jax.jit(
            jax.vmap(
                lambda runner, params, key: dataclasses.replace(
                    ppo, env_params=params
                ).move_to_task(runner, key)
            )
        )(tile(runners, tasks), task_params, move_keys)
        transferred, transfer_metrics = run.timed(
            "transfer",
            autonomy(
                ppo,
                moved,
                ("oracle", "isr"),
                tile(isr.params, tasks),
                self.updates["transfer"],
                bar,
                env_params=task_params,
                isr_threshold=config.isr_threshold,
                isr_network=self.isr_network,
                schedule=config.schedule,
                reward_form=config.reward_form,
            ),
        )
        policies = {
            "socialized": runners.train.params,
            "frozen": jax.tree.map(lambda x: x[0], frozen.train.params),
            "transfer": transferred.train.params,
        }
        eval_keys = jax.vmap(jax.random.fold_in)(tile(run.key_isr, tasks), task_index)
        returns, goals = run.timed("evaluation", self.evaluate(policies, eval_keys, task_params))
        metrics = (social_metrics, frozen_metrics, transfer_metrics)
        return policies, isr, metrics, returns, goals

    def evaluate(self, policies: dict, keys: jax.Array, task_params):
        """Each condition's mean return and goals per episode over `eval_episodes` episodes
        without learning, the same keys for every condition; float[conditions, tasks, seeds]
        each, and the Timing."""
        config, ppo = self.config, self.ppo
        seeds, tasks = config.seeds, len(config.tasks)
        # [conditions * tasks * seeds] runs
        learnt = policies["transfer"]
        every = jax.tree.map(
            lambda frozen, learnt: jnp.concatenate([*[frozen] * tasks, learnt[0], learnt[1]]),
            policies["frozen"],
            learnt,
        )
        steps = int(ppo.env_params.max_steps)

        def evaluate(params, key, env_params):
            task = dataclasses.replace(ppo, env_params=env_params)
            returns, goals = task.evaluate(params, key, config.eval_episodes, steps, config.greedy)
            return returns.mean(), goals.mean()

        timing = Timing(steps=len(CONDITIONS) * tasks * seeds * config.eval_episodes * steps)
        returns, goals = compiled_call(
            over_runs(evaluate),
            every,
            tile(jax.random.key_data(keys), len(CONDITIONS)),
            tile(task_params, len(CONDITIONS)),
            timing=timing,
            name="evaluation",
        )
        shape = (len(CONDITIONS), tasks, seeds)
        return np.asarray(returns).reshape(shape), np.asarray(goals).reshape(shape), timing

    def analyse(self, outcome, run: Run) -> dict:
        config, name = self.config, self.name
        policies, isr, metrics, returns, goals = outcome
        run.save_checkpoints(policies, {"isr": isr.params})
        _write_metrics(run, config, *metrics)
        numbers = {"tasks": list(config.tasks)}
        per_task = {
            task: _task_results(returns[:, t], goals[:, t]) for t, task in enumerate(config.tasks)
        }
        if len(config.tasks) == 1:
            numbers.update(per_task[config.tasks[0]])
        else:
            numbers["per_task"] = per_task
            numbers["pooled"] = _pooled_results(returns, config.tasks)
        social_curves = metric_curves(metrics[0], CURVES)
        numbers["published"] = PUBLISHED.get(name)
        numbers["socialization"] = {
            "return": np.asarray(social_curves["true_return"][:, -1]).tolist(),
            "goals_per_episode": np.asarray(social_curves["goals_per_episode"][:, -1]).tolist(),
        }
        if config.best_checkpoint_steps is not None:
            best = best_checkpoints(
                metrics[0].true_return, config.ppo.batch_size, config.best_checkpoint_steps
            )
            numbers["socialization"]["best_checkpoint_step"] = (
                (best + 1) * config.ppo.batch_size
            ).tolist()
        numbers["isr_model"] = {
            "train_mse": np.asarray(isr.train_mse).tolist(),
            "test_mse": np.asarray(isr.test_mse).tolist(),
        }
        labels = tuple(
            f"{config.test_blocks} random blocks" if task == RANDOM_TASK else task
            for task in config.tasks
        )
        by_task = jax.tree.map(lambda x: x.reshape(2, len(labels), config.seeds, -1), metrics[2])
        transfer = {
            condition: {
                label: metric_curves(jax.tree.map(lambda x, c=c, t=t: x[c, t], by_task), CURVES)
                for t, label in enumerate(labels)
            }
            for c, condition in enumerate(("oracle", "isr"))
        }
        run.save_figure(
            f"{name}.png",
            generalization_figure(
                returns,
                labels,
                CONDITIONS,
                transfer,
                published=PUBLISHED.get(name, {}).get("return"),
                title=f"{name} ({config.preset} preset, {config.seeds} seeds, mean ± SE)",
            ),
        )
        return numbers


def _task_results(returns: np.ndarray, goals: np.ndarray) -> dict:
    """Per-seed numbers, summaries and tests of one task; float[conditions, seeds] inputs."""
    per_seed = {
        condition: {"return": returns[c].tolist(), "goals_per_episode": goals[c].tolist()}
        for c, condition in enumerate(CONDITIONS)
    }
    summary = {
        condition: {name: summarize(values).as_dict() for name, values in metrics.items()}
        for condition, metrics in per_seed.items()
    }
    index = {condition: c for c, condition in enumerate(CONDITIONS)}
    tests = {
        f"{a} vs {b}": welch_test(returns[index[a]], returns[index[b]]).as_dict() for a, b in PAIRS
    }
    oracle = summary["oracle"]["return"]["mean"]
    return {
        "conditions": per_seed,
        "summary": summary,
        "tests": tests,
        "return_ratio_to_oracle": {
            f"{c}/oracle": summary[c]["return"]["mean"] / oracle if oracle > 0 else None
            for c in ("frozen", "isr")
        },
    }


def _pooled_results(returns: np.ndarray, tasks: tuple[str, ...]) -> dict:
    """Pairwise tests over all tasks with the task as a fixed effect; float[C, T, seeds]."""
    conditions, task_count, seeds = returns.shape
    labels = np.repeat(np.asarray(CONDITIONS), task_count * seeds)
    blocks = np.tile(np.repeat(np.asarray(tasks), seeds), conditions)
    values = returns.reshape(-1)
    tests = {
        f"{a} vs {b}": fixed_effect_test(values, labels, blocks, a, b).as_dict() for a, b in PAIRS
    }
    means = returns.mean(axis=(1, 2))
    return {
        "model": "return ~ condition + task (OLS, task as a fixed effect, rows of the two "
        "conditions compared)",
        "mean_return": {c: float(means[i]) for i, c in enumerate(CONDITIONS)},
        "tests": tests,
    }


def _write_metrics(run: Run, config, social_metrics, frozen_metrics, transfer_metrics) -> None:
    """metrics.csv: one row per seed, phase, condition, task and update."""
    social, frozen, transfer = (
        jax.tree.map(np.asarray, m) for m in (social_metrics, frozen_metrics, transfer_metrics)
    )
    rows = []
    for s, seed in enumerate(config.seed_list):
        rows += metric_rows([seed, "socialization", "socialization", "train"], social, s)
        rows += metric_rows([seed, "frozen", "frozen", "train"], frozen, (0, s))
        for t, task in enumerate(config.tasks):
            for c, condition in enumerate(("oracle", "isr")):
                index = (c, t * config.seeds + s)
                rows += metric_rows([seed, "transfer", condition, task], transfer, index)
    run.write_csv(
        "metrics.csv", ["seed", "phase", "condition", "task", "update", *METRIC_NAMES], rows
    )
