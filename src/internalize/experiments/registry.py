"""Every experiment, registered once: what `reproduce`, `reproduce all`, `report` and `render`
know of an experiment comes from its record here.

A record names the module that holds the experiment's config class and protocol (a
`runner.Protocol`, which `runner.run_experiment` runs), its title
and help, the settings that set it apart from a sibling sharing the module (ood and layouts),
the group it runs in under `reproduce all` (experiments of one group run one after another in
one worker process and share identical phases), about what a seed of it costs (so that the
workers start the costliest groups first) and whether it saves policies to render.
Adding an experiment is one module (config, protocol, analysis) and one line here; another
package adds its own with no file of ours touched, through an entry point of the group
`internalize.experiments` that names its `Experiment` record (`internalize.plugins`).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from types import ModuleType
from typing import Any

import numpy as np

from internalize.envs.layouts import NAMED_LAYOUTS

Pick = tuple | Callable | str | None
"""Where a headline number comes from: a key path into the dict, a function of the dict, a
literal text, or None (nothing to show)."""


@dataclass(frozen=True)
class Experiment:
    """One experiment's record."""

    name: str
    module: str
    """Module with the config class and the protocol: a name under `internalize.experiments`,
    or a full import path (`mypackage.my_experiment`)."""
    config: str | type
    """Its config class (a frozen dataclass, subclass of `ExperimentConfig`), or its name in
    the module."""
    protocol: str | type
    """Its protocol class (a subclass of `runner.Protocol`), or its name in the module."""
    title: str
    """Heading in reports."""
    help: str
    """One line for `internalize reproduce --help`."""
    description: str
    """What `internalize reproduce NAME --help` says of it."""
    group: str = "retention"
    """Its group under `reproduce all`: experiments of one group run one after another in one
    worker and share identical phases (retention, hacking and scaling socialize alike)."""
    cost: float = 0.0
    """About the seconds one seed of it takes on one CPU with the defaults (measured, see
    benchmarks/RESULTS.md). Only the order matters: `reproduce all`'s workers take the groups
    of largest total cost first, so that they end together."""
    renders: bool = True
    """Saves policies that `internalize render` can play."""
    in_all: bool = True
    """Run by `reproduce all` (False: only on its own, `reproduce NAME`)."""
    paper: bool = False
    """One of the paper's experiments (SPEC §5), run by `reproduce paper` too."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Settings that differ from the config class's defaults (a sibling sharing the module)."""
    report_rows: tuple[tuple[str, "Pick", "Pick"], ...] = ()
    """The report's headline rows: (label, where ours is in results.json, where the published
    number is in the `published` dict)."""
    published: dict[str, Any] = field(default_factory=dict)
    """Published numbers for the report where results.json has no `published` key (SPEC §5)."""
    headline: tuple[str, ...] = ("*",)
    """The per-seed metrics a sweep's figures show (`sweep.seed_metrics` names, fnmatch
    patterns)."""

    def load(self) -> ModuleType:
        if "." in self.module:
            return import_module(self.module)
        return import_module(f"internalize.experiments.{self.module}")

    def config_class(self) -> type:
        return self._class(self.config)

    def protocol_class(self) -> type:
        return self._class(self.protocol)

    def _class(self, given: str | type) -> type:
        return given if isinstance(given, type) else getattr(self.load(), given)


def _published_slope(published: Mapping) -> float:
    """Slope of log10 test MSE against log10 training samples, fitted to the published means."""
    x, y = np.log10(published["train_samples"]), np.log10(published["test_mse"])
    return float(np.polyfit(x, y, 1)[0])


def _p_values(path: tuple, tests: tuple[str, ...], label: str = "p") -> tuple:
    """Report rows of the p-values of `tests` found under `path` (ours) and under `tests`."""
    return tuple((f"{label} {t}", (*path, t, "p_value"), ("tests", t, "p_value")) for t in tests)


def _writes(figures: str) -> str:
    return (
        f"Writes config.json, versions.json, metrics.csv, {figures} and results.json (last) "
        "into --out."
    )


REGISTRY: dict[str, Experiment] = {
    experiment.name: experiment
    for experiment in (
        Experiment(
            "retention",
            "retention",
            "RetentionConfig",
            "Retention",
            "A. Retention vs unlearning",
            "experiment A: retention vs unlearning when the caregiver leaves",
            "Experiment A (SPEC §5 A): per seed, socialize with the caregiver present, train the "
            "ISR on that data, then continue under oracle, none and isr. "
            + _writes("retention.png"),
            cost=17,
            paper=True,
            headline=("*/goals_per_episode",),
            report_rows=(
                *(
                    (f"goals {r}", ("goals_ratio_to_oracle", r), ("goals_ratio_to_oracle", r))
                    for r in ("none/oracle", "isr/oracle")
                ),
                (
                    "oracle goals per episode",
                    ("summary", "oracle", "goals_per_episode", "mean"),
                    ("goals_per_episode", "oracle"),
                ),
            ),
            published={
                "source": "SPEC §5 A (qualitative, read off the paper's curves; 10 seeds)",
                "finding": (
                    "none falls to about zero goals soon after the caregiver leaves; isr keeps "
                    "reaching goals at the same rate as oracle, with no measurable loss; curves "
                    "reach about 2 goals per episode"
                ),
                "goals_ratio_to_oracle": {"none/oracle": "≈ 0", "isr/oracle": "≈ 1"},
                "goals_per_episode": {"oracle": "≈ 2"},
            },
        ),
        Experiment(
            "overoptimization",
            "overoptimization",
            "OveroptimizationConfig",
            "Overoptimization",
            "The overoptimization curve of internalized values (beyond the paper)",
            "beyond the paper: gold against KL distance for ISRs of 5 data sizes, single and "
            "ensembles",
            "Beyond the paper: per seed, socialize once (as in D); on 1/24, 1/12, 1/6, 1/3 and "
            "all of the data train a single ISR and an ensemble of 5; autonomy with the single "
            "ISR and with the ensemble aggregated by mean, min and uwo; gold (true return) "
            "against d = sqrt(KL to the socialized policy) fitted by d (alpha - beta log d), and "
            "the share of D's hack that each ensemble closes. "
            + _writes("overoptimization.png, fits.png, reward_map.png"),
            cost=150,
            renders=False,
            headline=("*:1/12/true_return_late", "*:all/true_return_late"),
            report_rows=tuple(
                (
                    f"share of the hack closed at 1/12: {a}",
                    ("hack_closed", a, "share"),
                    "nearly all (Coste et al.)",
                )
                for a in ("mean", "min", "uwo")
            )
            + tuple(
                (
                    f"p beta rises as the data shrink: {kind}",
                    ("beta_against_data", kind, "test", "p_value"),
                    "rises (Gao et al.)",
                )
                for kind in ("single", "min")
            ),
        ),
        Experiment(
            "hacking",
            "hacking",
            "HackingConfig",
            "Hacking",
            "D. Incomplete internalization (reward hacking)",
            "experiment D: autonomy with an ISR trained on 1/12 of the data (reward hacking)",
            "Experiment D (SPEC §5 D): per seed, socialize once, train an ISR on all the data "
            "and one on its first 1/12, then run autonomy with each. "
            + _writes("hacking.png (internal reward, goals, looping), reward_map.png"),
            cost=7,
            paper=True,
            headline=("*/goals_per_episode_late", "*/internal_reward_late", "*/looping_late"),
            report_rows=tuple(
                (name, ("findings", name), "yes" if name.startswith("isr_partial") else None)
                for name in (
                    "isr_partial: internal reward rises",
                    "isr_partial: goals fall",
                    "isr_partial: looping grows",
                    "isr_full: goals do not fall",
                    "isr_full: looping does not grow",
                )
            ),
        ),
        Experiment(
            "scaling",
            "scaling",
            "ScalingConfig",
            "Scaling",
            "C. ISR data scaling",
            "experiment C: ISR test error against the socialization data it learns from",
            "Experiment C (SPEC §5 C): per seed, socialize once, then train one ISR on the first "
            "10240, 20480, 30720, 40960, 81920 and 120832 samples; train and test MSE per seed. "
            + _writes("scaling.png"),
            cost=13,
            paper=True,
            renders=False,
            headline=("per_seed/test_mse/*", "tests/log-log slope/per_seed"),
            report_rows=(
                (
                    "log-log slope of test MSE (published: fit to the means)",
                    ("tests", "log-log slope", "summary", "mean"),
                    _published_slope,
                ),
                ("p slope < 0", ("tests", "log-log slope", "slope below 0", "p_value"), None),
                (
                    "train/test MSE gap (largest ratio of means, either way)",
                    ("tests", "max test/train ratio of a count mean"),
                    "no gap",
                ),
            ),
        ),
        Experiment(
            "ood",
            "generalization",
            "GeneralizationConfig",
            "Generalization",
            "B. Out-of-distribution generalization (5 random blocks)",
            "experiment B: generalization to 5 random blocks after socializing on 1",
            "Experiment B (SPEC §5 B): socialize on 1 random block; frozen trains on, then plays "
            "5 random blocks without learning; oracle and isr learn on 5 random blocks. All are "
            "evaluated over 100 episodes. " + _writes("ood.png"),
            group="generalization",
            cost=18,
            paper=True,
            settings={"tasks": ("random",)},
            headline=("*/return",),
            report_rows=tuple(
                (f"return {c}", ("summary", c, "return", "mean"), ("return", c, "mean"))
                for c in ("frozen", "isr", "oracle")
            )
            + _p_values(("tests",), ("isr vs frozen", "isr vs oracle")),
        ),
        Experiment(
            "layouts",
            "generalization",
            "GeneralizationConfig",
            "Generalization",
            "B. Generalization to the five hand-picked layouts",
            "experiment B on the five hand-picked layouts, pooled with a layout effect",
            "Experiment B's protocol on each hand-picked layout (plus, x, U, T, four rooms) from "
            "one socialization per seed, with a pooled comparison that has the layout as a "
            "fixed effect. " + _writes("layouts.png"),
            group="generalization",
            cost=36,
            paper=True,
            settings={"tasks": tuple(NAMED_LAYOUTS)},
            headline=("per_task/*/return",),
            report_rows=_p_values(
                ("pooled", "tests"), ("isr vs frozen", "isr vs oracle"), "pooled p"
            ),
        ),
        Experiment(
            "prosocial",
            "prosocial",
            "ProsocialConfig",
            "Prosocial",
            "E. Prosocial internalization",
            "experiment E: does the learner go on helping the partner in the boulder world",
            "Experiment E (SPEC §5 E): in the boulder world, per seed, socialize with the "
            "caregiver present (it rewards the learner when the partner reaches its goal), train "
            "the two-agent ISR on that data, then continue under oracle, none and isr. "
            + _writes("prosocial.png, episode.gif, episode.png, reward_map.png"),
            group="prosocial",
            cost=69,
            paper=True,
            headline=("*/helps_per_episode",),
            report_rows=(
                ("helps none/oracle", ("helps_ratio_to_oracle", "none/oracle"), "stops helping"),
                ("helps isr/oracle", ("helps_ratio_to_oracle", "isr/oracle"), "goes on helping"),
            ),
        ),
        Experiment(
            "departure",
            "departure",
            "DepartureConfig",
            "Departure",
            "When can the caregiver leave? (beyond the paper)",
            "beyond the paper: a critical period of socialization, and ways of leaving",
            "Beyond the paper: per seed, one socialization whose states are kept along the way; "
            "from socializations of several lengths, autonomy under oracle, none and isr (a "
            "critical period), and at equal caregiver effort, the caregiver leaving abruptly, "
            "fading, attending half the episodes, or when the learner is ready, each followed by "
            "autonomy with the ISR. "
            + _writes(
                "departure.png (critical period, retention against effort), "
                "departure_curves.png (curves with the presence under them)"
            ),
            group="departure",
            cost=73,
            renders=False,
            headline=("schedules/*/retention", "critical_period/*/isr/oracle"),
            report_rows=(
                (
                    "shortest socialization with isr ≥ 90% of oracle (steps)",
                    ("shortest_socialization", "socialize_steps"),
                    None,
                ),
                (
                    "its isr/oracle",
                    ("shortest_socialization", "isr/oracle", "mean"),
                    None,
                ),
            ),
        ),
        Experiment(
            "departure-boulder",
            "departure",
            "BoulderDepartureConfig",
            "BoulderDeparture",
            "When can the caregiver leave? The boulder world (beyond the paper)",
            "beyond the paper: departure's protocol in the boulder world (experiment E's task)",
            "The departure experiment in the boulder world, with experiment E's learner, ISR and "
            "threshold (the caregiver rewards the learner when the partner reaches its goal). "
            "Not part of reproduce all (about 4 times the goals world's cost per step). "
            + _writes("departure.png, departure_curves.png"),
            renders=False,
            in_all=False,
            headline=("schedules/*/retention", "critical_period/*/isr/oracle"),
        ),
        Experiment(
            "teach",
            "internalize.teach.replay",
            "TeachReplayConfig",
            "TeachReplay",
            "A person as the caregiver (a teaching session, replayed)",
            "beyond the paper: retrain a teaching session's learner from its log (teach --replay)",
            "Per seed, the ISR and the learner go through a teaching session's log again (the "
            "person's labels, each refit and block of updates, leaving), beside an untaught "
            "learner of the same seed; both evaluated on the world's events, forward moves and "
            "the ISR's reward per episode. Needs --set session=DIR (or `internalize teach "
            "--replay DIR`). " + _writes("checkpoints.msgpack"),
            group="teach",
            in_all=False,
            headline=("*/isr_reward", "*/events"),
            report_rows=(
                (
                    "ISR reward per episode, taught",
                    ("summary", "taught", "isr_reward", "mean"),
                    None,
                ),
                (
                    "ISR reward per episode, untaught",
                    ("summary", "untaught", "isr_reward", "mean"),
                    None,
                ),
                ("events per episode, taught", ("summary", "taught", "events", "mean"), None),
                ("events per episode, untaught", ("summary", "untaught", "events", "mean"), None),
            ),
        ),
    )
}
"""Every experiment, in the order `reproduce all` runs those it runs (`in_all`)."""


BROKEN: dict[str, str] = {}
"""Experiments that installed packages register (entry-point group `internalize.experiments`)
but that cannot be loaded: name -> why. Naming one is an error that says why; nothing else
minds them."""


def _add_installed() -> None:
    """Add the experiments of installed packages: each entry point of the group
    `internalize.experiments` names an `Experiment` record (`package.module:RECORD`), which
    joins the registry under its own name (a built-in one of that name is kept)."""
    from internalize.plugins import load, registered

    for name, target in registered("internalize.experiments").items():
        try:
            record = load(name, "experiment", "internalize.experiments", {})
            if not isinstance(record, Experiment):
                raise ValueError(
                    f"experiment {name!r} ({target}) is a {type(record).__name__}, not an "
                    "internalize.experiments.registry.Experiment"
                )
        except ValueError as error:
            BROKEN[name] = str(error)
            continue
        REGISTRY.setdefault(record.name, record)


_add_installed()


def register(experiment: Experiment) -> Experiment:
    """Add `experiment` to the registry (for one written outside this package: a notebook's,
    a script's), or replace the record of the same name."""
    REGISTRY[experiment.name] = experiment
    return experiment


def get(name: str) -> Experiment:
    """The record of experiment `name`; ValueError naming the known ones if there is none."""
    if name in BROKEN:
        raise ValueError(BROKEN[name])
    if name not in REGISTRY:
        raise ValueError(f"unknown experiment {name!r}; known: {list(REGISTRY)}")
    return REGISTRY[name]
