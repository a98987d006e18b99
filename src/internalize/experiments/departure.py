"""Beyond the paper: when can the caregiver leave, and does the way it leaves matter?

Two questions, from one socialization per seed (the caregiver present throughout) whose states
are kept along the way (`phases.socialize_snapshots`): a socialization stopped at a step is the
same run up to it.

1. **A critical period.** Socializations of each of `length_shares` of `socialize_steps` (by
   default 7.5e3, 1.5e4, 3e4, 6e4 and 1.2e5 steps), each with an ISR trained on its own data,
   then autonomy under `oracle`, `none` and `isr`. Per length: the ISR's test error, goals per
   episode at the end of autonomy, isr/oracle, and the shortest length at which `isr` keeps
   `keep_share` (90%) of `oracle`.
2. **How the caregiver leaves, at equal effort** (effort: environment steps with the caregiver
   present, `P` summed over steps). At each effort E of `effort_shares`:
   - `abrupt`: present for E steps, then gone (the paper's);
   - `fading F`: present until E - F/2, then fading linearly to absent over F steps (the
     `fading` schedule of `social.caregiver`), for each F of `fade_shares`; the ISR learns from
     the steps before the fade;
   - `intermittent`: present on a random `episode_share` of episodes (the `intermittent`
     schedule) over a socialization of E / episode_share steps, then gone; the ISR learns from
     the attended episodes only (`ISRDataset.observed`);
   - `readiness g` (for each g of `ready_goals`, at whatever effort it takes): present until the
     first update at which the learner's goals per episode, averaged over its last
     `ready_window` updates, reach g (the `readiness` schedule's rule), then gone; the ISR
     learns from the steps until then.
   Each is then followed by autonomy under `isr` (the ISR rewards in the caregiver's absence).
   Per schedule: effort, retention (goals at the end of autonomy over `oracle`'s after the
   longest socialization, per seed), ISR test error, and a paired test against `abrupt` at
   the same effort (readiness: at the length nearest its mean effort).

Each ISR and each cell's autonomy is one compiled call; calls run two at a time (see
`Departure.phases`).
"""

import math
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from internalize.envs.boulder import BoulderEnv, BoulderRules, agent_cells
from internalize.experiments.compiled import Timing
from internalize.experiments.phases import (
    AUTONOMY_CONDITIONS as CONDITIONS,
)
from internalize.experiments.phases import (
    PAPER_SCHEDULE,
    autonomy_settings,
    isr_trainer,
    per_run,
    runs_continuer,
    socialize_snapshots,
)
from internalize.experiments.prosocial import (
    PROSOCIAL_ISR_PRESETS,
    PROSOCIAL_PRESETS,
)
from internalize.experiments.retention import Retention, RetentionConfig
from internalize.experiments.runner import Protocol, Run
from internalize.experiments.tables import final_mean, metric_names, metric_rows
from internalize.isr.train import split_sizes
from internalize.plots import departure_figure, presence_curves_figure
from internalize.social.caregiver import ScheduleConfig, intermittent
from internalize.social.rewards import LearnerReward
from internalize.stats import paired_test, summarize

AUTONOMY_PHASES = ("autonomy without an ISR", "autonomy with the ISR")
"""The timings of the autonomy runs, by whether they have an ISR."""


@dataclass(frozen=True)
class DepartureConfig(RetentionConfig):
    """Settings of the departure experiment (shares are of `socialize_steps`)."""

    socialize_steps: int = 120_000
    """The longest socialization, and the longest a caregiver waiting for readiness stays
    (environment steps, rounded up to whole rollouts)."""
    length_shares: tuple[float, ...] = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)
    """Socialization lengths of the critical period, as shares of `socialize_steps`."""
    effort_shares: tuple[float, ...] = (1 / 4, 1 / 2)
    """Caregiver efforts at which the ways of leaving are compared, as shares of
    `socialize_steps`."""
    fade_shares: tuple[float, ...] = (1 / 4, 1 / 2)
    """Lengths of the fade of `fading`, as shares of `socialize_steps` (a fade longer than
    twice an effort is left out at that effort)."""
    episode_share: float = 0.5
    """intermittent: the share of episodes the caregiver attends."""
    ready_goals: tuple[float, ...] = (1.0, 2.0, 2.75)
    """readiness: goals per episode at which the caregiver leaves, one cell each."""
    ready_window: int = 4
    """readiness: updates averaged."""
    keep_share: float = 0.9
    """The share of oracle's goals the critical period asks `isr` to keep."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.schedule != ScheduleConfig():
            raise ValueError(
                "departure compares its own ways of leaving: set length_shares, effort_shares, "
                "fade_shares, episode_share or ready_goals instead of schedule"
            )
        for name in ("length_shares", "effort_shares", "fade_shares"):
            shares = getattr(self, name)
            if not all(0.0 < share <= 1.0 for share in shares):
                raise ValueError(f"{name} must lie in (0, 1], got {shares}")
        if not self.length_shares:
            raise ValueError("length_shares must name at least one socialization length")
        if not 0.0 < self.episode_share <= 1.0:
            raise ValueError(f"episode_share must lie in (0, 1], got {self.episode_share}")
        if not all(math.isfinite(goals) and goals >= 0 for goals in self.ready_goals):
            raise ValueError(f"ready_goals must be finite and >= 0, got {self.ready_goals}")
        if self.ready_window < 1:
            raise ValueError(f"ready_window must be >= 1, got {self.ready_window}")
        if not 0.0 < self.keep_share <= 1.0:
            raise ValueError(f"keep_share must lie in (0, 1], got {self.keep_share}")


@dataclass(frozen=True)
class Cell:
    """One way the caregiver leaves, followed by autonomy under `conditions`."""

    name: str
    schedule: str
    """abrupt, fading, intermittent or readiness."""
    start: tuple[str, int]
    """Where autonomy starts: ("at", u) the socialization after u updates, ("intermittent", u)
    the intermittent socialization after u updates, ("ready", i) the socialization where the
    i-th readiness threshold was met."""
    conditions: tuple[str, ...] = ("isr",)
    fade_steps: int = 0
    effort: int | None = None
    """The planned effort (steps), where it is known before the run."""
    compared_at: int | None = None
    """The effort (steps) of the comparison it belongs to (abrupt: its own length)."""


class Departure(Retention):
    """The critical period and the ways of leaving (see the module's docstring)."""

    def __init__(self, name: str, config: DepartureConfig) -> None:
        super().__init__(name, config)
        batch, total = config.ppo.batch_size, config.socialize_steps

        def updates(steps: float) -> int:
            return max(1, config.ppo.num_updates(math.ceil(steps)))

        lengths = sorted(
            {updates(s * total) for s in (*config.length_shares, *config.effort_shares)}
        )
        cells = [
            Cell(f"abrupt {u * batch}", "abrupt", ("at", u), CONDITIONS, 0, u * batch, u * batch)
            for u in lengths
        ]
        self.skipped = []
        for effort in sorted({updates(s * total) * batch for s in config.effort_shares}):
            for fade in sorted({round(s * total) for s in config.fade_shares}):
                if effort - fade / 2 < batch:
                    self.skipped.append(
                        f"fading {fade} at effort {effort}: the fade is longer than twice "
                        "the effort"
                    )
                    continue
                u = max(1, round((effort - fade / 2) / batch))  # the nearest whole rollout
                name = f"fading {fade} (effort {effort})"
                cells.append(
                    Cell(name, "fading", ("at", u), ("isr",), fade, u * batch + fade // 2, effort)
                )
            start = ("intermittent", updates(effort / config.episode_share))
            cells.append(
                Cell(f"intermittent (effort {effort})", "intermittent", start, compared_at=effort)
            )
        for i, goals in enumerate(config.ready_goals):
            cells.append(Cell(f"readiness {goals:g}", "readiness", ("ready", i)))
        self.cells = cells
        self.at_updates, self.intermittent_updates = (
            tuple(sorted({c.start[1] for c in cells if c.start[0] == source}))
            for source in ("at", "intermittent")
        )
        self.intermittent = any(c.schedule == "intermittent" for c in cells)
        for u in (*self.at_updates, *self.intermittent_updates):
            split_sizes(u * batch, config.isr.train_fraction)  # fails early if too few to split

    def describe(self) -> dict:
        batch = self.config.ppo.batch_size
        return {
            "socialize_updates": self.socialize_updates,
            "autonomy_updates": self.autonomy_updates,
            "cells": [
                {
                    "name": c.name,
                    "schedule": c.schedule,
                    "conditions": list(c.conditions),
                    "start": [
                        c.start[0],
                        c.start[1] * batch if c.start[0] != "ready" else c.start[1],
                    ],
                    "fade_steps": c.fade_steps,
                    "planned_effort": c.effort,
                }
                for c in self.cells
            ],
            "left_out": self.skipped,
            "env": self.describe_env(),
        }

    def planned_steps(self) -> int:
        config = self.config
        trained = sum(c != "oracle" for cell in self.cells for c in cell.conditions)
        socialized = self.socialize_updates + max(self.intermittent_updates, default=0)
        updates = socialized + (trained + 1) * self.autonomy_updates  # + 1: oracle's
        return config.seeds * config.ppo.batch_size * updates

    # Retention's batching of runs (its thresholds and schedules) does not apply: each run
    # computes its phases alone, as `Protocol`'s defaults do.
    batch_key = Protocol.batch_key
    phases_together = Protocol.__dict__["phases_together"]  # the classmethod itself

    def phases(self, run: Run):
        """Two socializations (the caregiver always there, and, if asked for, one that attends
        some episodes), then an ISR training per start and an autonomy per cell and condition,
        each a compiled call. The first socialization goes on past the longest length for as
        long as autonomy lasts: a caregiver who stays is a socialization that goes on, so it is
        every length's `oracle` too.

        A compiled call runs outside Python's lock, so calls that do not wait on each other run
        side by side, two at a time (on one CPU they take turns, with the same numbers): the
        ISRs, the largest first, and the runs without an ISR, then each cell's `isr` runs as
        soon as its ISR is trained. Calls of one kind have the same shapes and share one
        compiled program."""
        config, bar = self.config, run.progress
        continue_cells = runs_continuer(self.ppo, self.autonomy_updates, bar)
        timings = {name: Timing() for name in ("isr", *AUTONOMY_PHASES)}
        pool = ThreadPoolExecutor(2)
        try:
            metrics, data, snapshots, sources, datasets = self.socializations(run, pool)
            # Every ISR learns from a dataset of the first socialization's size, so that one
            # compiled program trains them all.
            train = isr_trainer(config.isr, data.size, self.isr_network, bar)
            seen = {start: self.observed(start, datasets, snapshots) for start in self.starts}
            training = {
                pool.submit(self.train_isr, run, train, datasets, seen, start): start
                for start in sorted(seen, key=lambda start: -seen[start].sum())
            }
            without, with_isr = AUTONOMY_PHASES
            waiting = [
                (without, pool.submit(self.autonomy, run, continue_cells, sources, None, [cell]))
                for cell in self.cells
                if "none" in cell.conditions
            ]
            isrs = {}
            for done in as_completed(training):
                start = training[done]
                isrs[start] = _timed(timings["isr"], done.result())
                waiting += [
                    (with_isr, pool.submit(self.autonomy, run, continue_cells, sources, isrs, [c]))
                    for c in self.cells
                    if c.start == start and "isr" in c.conditions
                ]
            autonomy = {}
            for phase, done in waiting:
                autonomy |= _timed(timings[phase], done.result())
        finally:
            pool.shutdown(cancel_futures=True)
        run.timings |= {name: timing.as_dict() for name, timing in timings.items()}
        isrs = {cell.name: isrs[cell.start] for cell in self.cells}
        for cell in self.cells:  # oracle: the socialization going on
            if "oracle" in cell.conditions:
                later = slice(cell.start[1], cell.start[1] + self.autonomy_updates)
                autonomy[cell.name, "oracle"] = jax.tree.map(
                    lambda x, later=later: np.asarray(x[: config.seeds, later]), metrics
                )
        # By cell and condition, whichever call finished first.
        order = [(cell.name, condition) for cell in self.cells for condition in cell.conditions]
        return metrics, snapshots, isrs, {key: autonomy[key] for key in order}

    def socializations(self, run: Run, pool: ThreadPoolExecutor) -> tuple:
        """The first socialization (the caregiver always there, snapshots kept along the way)
        and, if a cell asks for it, the one that attends some episodes, side by side in `pool`:
        (metrics, the first's data, its snapshots, the snapshots and the datasets by source)."""
        config, ppo, bar = self.config, self.ppo, run.progress
        social = pool.submit(
            socialize_snapshots,
            ppo,
            run.key_runs,
            self.socialize_updates + self.autonomy_updates,
            self.at_updates,
            config.ready_goals,
            config.ready_window,
            ready_until=self.socialize_updates,
            progress=bar,
        )
        if self.intermittent:
            attends = LearnerReward(intermittent(config.episode_share), jnp.float32(0.0))
            attending = pool.submit(
                socialize_snapshots,
                ppo,
                run.key_runs,  # paired: the same seeds, the same start
                self.intermittent_updates[-1],
                self.intermittent_updates,
                rewards=per_run(attends, config.seeds),
                progress=bar,
                name="intermittent socialization",
            )
        metrics, data, snapshots = run.timed("socialization", social.result())
        sources, datasets = {"at": snapshots, "ready": snapshots}, {"at": data, "ready": data}
        if self.intermittent:
            attended, attended_data, sources["intermittent"] = run.timed(
                "intermittent socialization", attending.result()
            )
            metrics = jax.tree.map(_concatenate_padded, metrics, attended)
            datasets["intermittent"] = jax.tree.map(lambda x: _padded(x, data.size), attended_data)
        return metrics, data, snapshots, sources, datasets

    @property
    def starts(self) -> list:
        """Where the cells' autonomy starts, each once (cells that start alike share an ISR)."""
        return list(dict.fromkeys(cell.start for cell in self.cells))

    def rows(self, cell: Cell) -> slice:
        """The socialization's rows a cell starts from (its seeds'): the first socialization,
        or the one with an intermittent caregiver, stacked after it."""
        seeds = self.config.seeds
        return slice(seeds, 2 * seeds) if cell.start[0] == "intermittent" else slice(0, seeds)

    def start(self, cell: Cell, sources: dict):
        """The runners a cell's autonomy starts from, [seeds]."""
        source, index = cell.start
        snapshots = sources[source]
        if source == "ready":
            return jax.tree.map(lambda x: x[index], snapshots.ready)
        at = (self.at_updates if source == "at" else self.intermittent_updates).index(index)
        return jax.tree.map(lambda x: x[at], snapshots.at_updates)

    def start_updates(self, cell: Cell, snapshots) -> np.ndarray:
        """int[seeds]: the updates of socialization before the cell's autonomy."""
        source, index = cell.start
        if source == "ready":
            return np.asarray(snapshots.ready_update[index])
        return np.full(self.config.seeds, index)

    def observed(self, start: tuple, datasets: dict, snapshots) -> np.ndarray:
        """bool[seeds, N]: the steps the caregiver saw before leaving, for the cells that start
        at `start`."""
        cell = next(c for c in self.cells if c.start == start)
        data = datasets[start[0]]
        ends = self.start_updates(cell, snapshots) * self.config.ppo.batch_size
        return np.asarray(data.observed) & (np.arange(data.size)[None] < ends[:, None])

    def train_isr(self, run: Run, train, datasets: dict, seen: dict, start: tuple):
        """The ISRs of the cells that start at `start`, one per seed, on the steps of
        `seen[start]`, in one call of `train` (`phases.isr_trainer`): (ISRResult, Timing)."""
        data = datasets[start[0]].replace(observed=None)
        rows = jnp.arange(self.config.seeds)
        return train(run.key_isr, rows, jnp.asarray(seen[start]), data)

    def autonomy(self, run: Run, continue_cells, sources: dict, isrs: dict | None, cells: list):
        """The autonomy of the runs of `cells` with the ISR (given `isrs`, by start), or of
        their runs without one but `oracle` (see `phases`), in one call of `continue_cells`
        (`phases.runs_continuer`); metrics by (cell name, condition), and the timing."""
        config, blocks = self.config, []
        for cell in cells:
            start = self.start(cell, sources)
            fading = cell.schedule == "fading"
            schedule = (
                ScheduleConfig("fading", fade_steps=cell.fade_steps) if fading else PAPER_SCHEDULE
            )
            for condition in cell.conditions:
                if condition == "oracle" or (condition == "isr") != (isrs is not None):
                    continue
                settings = autonomy_settings(
                    (condition,),
                    np.asarray(start.step),
                    config.seeds,
                    None if isrs is None else isrs[cell.start].params,
                    config.isr_threshold,
                    self.isr_network,
                    schedule,
                    config.reward_form,
                )
                index = CONDITIONS.index(condition)  # as `phases.autonomy` keys a condition
                key = jax.vmap(jax.random.fold_in, (0, None))(start.key, index)
                blocks.append((cell.name, condition, start.replace(key=key), settings))
        timing = Timing(
            steps=len(blocks) * config.seeds * self.autonomy_updates * config.ppo.batch_size
        )
        if not blocks:
            return {}, timing
        runners, settings = (
            jax.tree.map(lambda *parts: jnp.concatenate(parts), *[block[i] for block in blocks])
            for i in (2, 3)
        )
        name = "autonomy: " + ("none" if isrs is None else "isr")
        _, metrics = continue_cells(runners, settings, timing, name)
        outcome = {}
        for b, (cell_name, condition, *_) in enumerate(blocks):
            part = slice(b * config.seeds, (b + 1) * config.seeds)
            outcome[cell_name, condition] = jax.tree.map(
                lambda x, part=part: np.asarray(x[part]), metrics
            )
        return outcome, timing

    # ------------------------------------------------------------------------------ analysis

    def analyse(self, outcome, run: Run) -> dict:
        config = self.config
        batch, fraction = config.ppo.batch_size, config.final_fraction
        social, snapshots, isrs, autonomy = outcome
        social = jax.tree.map(np.asarray, social)
        start_effort = self.start_efforts(social, snapshots)
        last = len(self.at_updates) - 1  # the policy after the longest socialization
        socialized = jax.tree.map(lambda x: x[last], snapshots.at_updates.train.params)
        run.save_checkpoints({"socialized": socialized}, {n: isr.params for n, isr in isrs.items()})

        goals = {key: final_mean(m.goals_per_episode, fraction) for key, m in autonomy.items()}
        effort = {
            key: start_effort[key[0]] + (m.presence * batch).sum(-1) for key, m in autonomy.items()
        }
        isr_mse = {name: np.asarray(isr.test_mse) for name, isr in isrs.items()}
        self.write_metrics(run, social, autonomy, start_effort)

        abrupt = [cell for cell in self.cells if cell.schedule == "abrupt"]
        longest = abrupt[-1].name
        critical = self.critical_period(abrupt, goals, isr_mse)
        kept = [
            name for name, row in critical.items() if row["isr/oracle"]["mean"] >= config.keep_share
        ]
        shortest = kept[0] if kept else None

        oracle = goals[longest, "oracle"]
        schedules = self.ways_of_leaving(abrupt, goals, effort, isr_mse, snapshots, oracle)
        findings = _findings(critical, shortest, schedules, config.keep_share)

        self.save_figures(
            run, critical, schedules, goals, effort, isr_mse, (social, snapshots, autonomy)
        )
        return {
            "critical_period": critical,
            "shortest_socialization": None
            if shortest is None
            else {
                "cell": shortest,
                "socialize_steps": critical[shortest]["socialize_steps"],
                "isr/oracle": critical[shortest]["isr/oracle"],
            },
            "schedules": schedules,
            "oracle_reference": longest,
            "left_out": self.skipped,
            "findings": findings,
        }

    def critical_period(self, abrupt: list, goals: dict, isr_mse: dict) -> dict:
        """Per length of socialization (the abrupt cells): goals under each condition, isr over
        oracle, the ISR's error and isr against none, over seeds."""
        critical = {}
        for cell in abrupt:
            ratio = goals[cell.name, "isr"] / np.maximum(goals[cell.name, "oracle"], 1e-9)
            critical[cell.name] = {
                "socialize_steps": cell.effort,
                "goals_per_episode": {
                    c: summarize(goals[cell.name, c]).as_dict() for c in CONDITIONS
                },
                "isr/oracle": summarize(ratio).as_dict(),
                "isr/oracle per seed": ratio.tolist(),
                "isr_test_mse": summarize(isr_mse[cell.name]).as_dict(),
                "isr vs none": paired_test(
                    goals[cell.name, "isr"], goals[cell.name, "none"], "greater"
                ).as_dict(),
            }
        return critical

    def ways_of_leaving(
        self, abrupt: list, goals: dict, effort: dict, isr_mse: dict, snapshots, oracle
    ) -> dict:
        """Per cell: its effort, goals and retention (isr's goals over `oracle`, the longest
        socialization's) and, for a way of leaving, its paired test against abrupt at its
        effort (readiness: at the length nearest its mean effort)."""
        schedules = {}
        for cell in self.cells:
            retention = goals[cell.name, "isr"] / np.maximum(oracle, 1e-9)
            row = {
                "schedule": cell.schedule,
                "effort": summarize(effort[cell.name, "isr"]).as_dict(),
                "effort per seed": effort[cell.name, "isr"].tolist(),
                "goals_per_episode": summarize(goals[cell.name, "isr"]).as_dict(),
                "goals per seed": goals[cell.name, "isr"].tolist(),
                "retention": summarize(retention).as_dict(),
                "retention per seed": retention.tolist(),
                "isr_test_mse": summarize(isr_mse[cell.name]).as_dict(),
            }
            if cell.schedule == "readiness":
                row["never ready"] = int(np.asarray(snapshots.never_ready[cell.start[1]]).sum())
            if cell.schedule != "abrupt":  # at its effort; readiness: at the nearest length
                by_effort = {c.effort: c for c in abrupt}
                mean_effort = float(np.mean(effort[cell.name, "isr"]))
                against = by_effort.get(cell.compared_at) or self.nearest_abrupt(
                    abrupt, mean_effort
                )
                row["against"] = against.name
                row["vs abrupt"] = paired_test(
                    goals[cell.name, "isr"], goals[against.name, "isr"]
                ).as_dict()
            schedules[cell.name] = row
        return schedules

    def save_figures(self, run: Run, critical, schedules, goals, effort, isr_mse, played) -> None:
        """`departure.png` (critical period, retention against effort) and
        `departure_curves.png` (the ways of leaving at one effort, and readiness)."""
        config, (social, snapshots, autonomy) = self.config, played
        abrupt = [cell for cell in self.cells if cell.schedule == "abrupt"]
        figure = departure_figure(
            {
                name: (
                    row["socialize_steps"],
                    {c: goals[name, c] for c in CONDITIONS},
                    isr_mse[name],
                )
                for name, row in critical.items()
            },
            {
                name: (effort[name, "isr"], row["retention per seed"], row["schedule"])
                for name, row in schedules.items()
            },
            title=f"Departure ({config.preset} preset, {config.seeds} seeds, mean ± SE)",
        )
        run.save_figure("departure.png", figure)
        compared = [c.compared_at for c in self.cells if c.schedule in ("fading", "intermittent")]
        shown_at = max(compared, default=abrupt[-1].effort)
        shown = [c for c in self.cells if c.compared_at == shown_at or c.schedule == "readiness"]
        run.save_figure(
            "departure_curves.png",
            presence_curves_figure(
                {cell.name: self.timeline(cell, social, snapshots, autonomy) for cell in shown},
                title=f"Ways of leaving at effort {shown_at} and by readiness (isr; mean ± SE)",
            ),
        )

    def timeline(self, cell: Cell, social, snapshots, autonomy) -> dict:
        """A cell's whole run, socialization then autonomy (isr), by update: "step" float[T],
        "goals_per_episode" and "presence" float[seeds, T] (nan after a seed's run ended:
        runs that leave when ready are shorter)."""
        before = jax.tree.map(lambda x: x[self.rows(cell)], social)
        after, starts = autonomy[cell.name, "isr"], self.start_updates(cell, snapshots)
        length = int(starts.max()) + self.autonomy_updates
        found = {"step": np.arange(1, length + 1, dtype=np.float64) * self.config.ppo.batch_size}
        for name in ("goals_per_episode", "presence"):
            curves = np.full((self.config.seeds, length), np.nan)
            for s, start in enumerate(starts.tolist()):
                first, then = getattr(before, name)[s, :start], getattr(after, name)[s]
                curves[s, : start + len(then)] = np.concatenate([first, then])
            found[name] = curves
        return found

    @staticmethod
    def nearest_abrupt(abrupt: list[Cell], effort: float) -> Cell:
        return min(abrupt, key=lambda cell: abs(math.log(cell.effort / max(effort, 1.0))))

    def start_efforts(self, social, snapshots) -> dict[str, np.ndarray]:
        """Per cell, float[seeds]: the caregiver's effort (steps present) before autonomy."""
        batch, found = self.config.ppo.batch_size, {}
        for cell in self.cells:
            presence = social.presence[self.rows(cell)]
            starts = self.start_updates(cell, snapshots)
            spent = [presence[s, :start].sum() for s, start in enumerate(starts.tolist())]
            found[cell.name] = np.asarray(spent, np.float64) * batch
        return found

    def write_metrics(self, run: Run, social, autonomy, start_effort) -> None:
        """metrics.csv: every update of every run with its presence and the effort so far."""
        batch, seeds = self.config.ppo.batch_size, run.seeds
        rows = []

        def add(prefix, metrics, row, before):
            effort = before + np.cumsum(metrics.presence[row] * batch)
            for found, spent in zip(
                metric_rows(prefix, metrics, row), effort.tolist(), strict=True
            ):
                rows.append([*found, spent])

        for s, seed in enumerate(seeds):
            add([seed, "socialization", "caregiver"], social, s, 0.0)
            if self.intermittent:  # its own updates, not the padding after them
                row = (len(seeds) + s, slice(self.intermittent_updates[-1]))
                add([seed, "intermittent socialization", "caregiver"], social, row, 0.0)
            for (name, condition), metrics in autonomy.items():
                add([seed, name, condition], metrics, s, start_effort[name][s])
        run.write_csv(
            "metrics.csv",
            ["seed", "cell", "condition", "update", *metric_names(social), "effort"],
            rows,
        )


def _padded(x: jax.Array, size: int) -> jax.Array:
    """`x` (leading axes [runs, steps]) cut or padded with zeros (False) along steps to `size`."""
    x = x[:, :size]
    return jnp.pad(x, [(0, 0), (0, size - x.shape[1])] + [(0, 0)] * (x.ndim - 2))


def _concatenate_padded(first: Any, second: Any) -> Any:
    """Two arrays with leading axes [runs, steps] stacked along runs, the shorter padded along
    steps with zeros (False); None for two Nones."""
    if first is None:
        return None
    size = max(first.shape[1], second.shape[1])
    return jnp.concatenate([_padded(first, size), _padded(second, size)])


def _timed(total: Timing, outcome: tuple) -> Any:
    """The output of a call that returned `(output, Timing)`, its timing added to `total`."""
    output, timing = outcome
    total.compile_s += timing.compile_s
    total.run_s += timing.run_s
    total.steps += timing.steps
    return output


def _findings(
    critical: dict, shortest: str | None, schedules: dict, keep_share: float
) -> list[str]:
    """The findings in sentences, each with its numbers (whichever way they fall)."""
    found = []
    if shortest is None:
        found.append(
            f"At no socialization length tried does isr keep {keep_share:.0%} of oracle's goals."
        )
    else:
        ratio = critical[shortest]["isr/oracle"]
        found.append(
            f"The shortest socialization at which isr keeps {keep_share:.0%} of oracle's goals: "
            f"{critical[shortest]['socialize_steps']} steps (isr/oracle {ratio['mean']:.2f}, "
            f"95% CI {_interval(ratio)})."
        )
    for name, row in schedules.items():
        test = row.get("vs abrupt")
        if test is None:
            continue
        if test["n_a"] < 2:
            verdict = "not testable with one seed"
        elif test["p_value"] is None or test["p_value"] >= 0.05:
            verdict = "no detectable difference"
        else:
            verdict = "better" if test["difference"] > 0 else "worse"
        found.append(
            f"{name}: effort {row['effort']['mean']:.0f} steps, retention "
            f"{row['retention']['mean']:.2f} against {row['against']}'s "
            f"{schedules[row['against']]['retention']['mean']:.2f} "
            f"(goals difference {test['difference']:+.3f}, paired p = {_p(test['p_value'])}): "
            f"{verdict}."
            + (
                f" Never ready in {row['never ready']} of {row['effort']['n']} seeds (left at the "
                "longest socialization)."
                if row.get("never ready")
                else ""
            )
        )
    return found


def _p(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2g}"


def _interval(summary: dict) -> str:
    """A summary's interval, or n/a where it has none (one seed)."""
    if summary["ci_low"] is None:
        return "n/a"
    return f"[{summary['ci_low']:.2f}, {summary['ci_high']:.2f}]"


@dataclass(frozen=True)
class BoulderDepartureConfig(DepartureConfig):
    """Settings of the departure experiment in the boulder world: experiment E's presets,
    lengths and ISR threshold; a "goal" is the partner reaching its goal."""

    PPO_PRESETS: ClassVar = PROSOCIAL_PRESETS
    ISR_PRESETS: ClassVar = PROSOCIAL_ISR_PRESETS

    world: str = "boulder"
    socialize_steps: int = 240_000
    autonomy_steps: int = 240_000
    isr_threshold: float | None = 0.2
    ready_goals: tuple[float, ...] = (0.3, 0.5)
    """readiness: the partner's arrivals per episode at which the caregiver leaves (experiment
    E's learner helps about 0.6 times per episode at the end of its 2.4e5 steps of
    socialization, 0.3 to 1.0 over seeds)."""
    boulder: BoulderRules = BoulderRules()
    """The boulder world's rules (`boulder.KEY`), as in experiment E: SPEC §3's model, or each
    of the original's (SPEC §7; `internalize.envs.boulder.BoulderRules`)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.world != "boulder":
            raise ValueError(
                f"departure-boulder runs in the boulder world (its two-agent ISR), not in "
                f"world={self.world!r}; run `departure` in a world of your own"
            )


class BoulderDeparture(Departure):
    """The departure protocol with experiment E's two-agent ISR."""

    AGENT_CELLS = staticmethod(agent_cells)  # not `Prosocial.AGENT_CELLS`: a bare function
    # read off the class becomes a method here, and the ISR called it with the protocol first

    def make_env(self):
        env = BoulderEnv(rules=self.config.boulder)
        return env, env.make_params()
