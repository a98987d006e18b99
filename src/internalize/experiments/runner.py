"""One runner for every experiment.

An experiment is three things: a frozen config (`ExperimentConfig`), a protocol (phases that
produce arrays) and an analysis (numbers and figures from those arrays). It is written as a
`Protocol` subclass in a module of its own and registered once (`registry.py`). The runner does
everything else: it checks the settings before anything is written, holds the run directory,
writes `config.json` and `versions.json`, keys every seed, shows one progress bar, times every
phase, and writes `results.json` last, with the config, versions and timings.

    class Retention(Protocol):
        def __init__(self, name, config): ...          # build and check; nothing written yet
        def describe(self) -> dict: ...                # what config.json adds to the settings
        def planned_steps(self) -> int: ...            # environment steps, for the bar
        def phases(self, run: Run): ...                # the compiled phases, timed by `run`
        def analyse(self, outcome, run: Run) -> dict:  # metrics.csv, figures, the numbers

`run_experiment(name, config, out)` runs one into a new directory; `reproduce NAME`, `reproduce
all`, `report` and `render` all go through the registry and this runner.
"""

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax

from internalize.experiments import registry
from internalize.experiments.common import (
    ExperimentConfig,
    Progress,
    RunDirectory,
    SharedProgress,
    open_progress,
    save_checkpoints,
    versions,
)
from internalize.experiments.compiled import Timing
from internalize.experiments.phases import seed_keys
from internalize.isr.model import ISRNetwork, centre_cell


@dataclass
class Run:
    """What a protocol's phases and its analysis are given: the run directory, the progress bar,
    the seeds' keys, and the timings of the phases so far."""

    directory: RunDirectory
    progress: "Progress | SharedProgress"
    seeds: list[int]
    key_runs: jax.Array
    """Per seed, the key of its training runs."""
    key_isr: jax.Array
    """Per seed, the key of its ISR (and of evaluations)."""
    timings: dict[str, dict] = field(default_factory=dict)

    def timed(self, name: str, outcome: tuple) -> Any:
        """The outputs of a phase that returned `(*outputs, Timing)`, its timing recorded
        under `name`; one output is returned as itself."""
        *outputs, timing = outcome
        if not isinstance(timing, Timing):
            raise TypeError(f"phase {name!r} returned no Timing last")
        self.timings[name] = timing.as_dict()
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def save_checkpoints(self, policies: dict, isrs: dict) -> None:
        save_checkpoints(self.directory, policies, isrs)

    def write_csv(self, name: str, columns, rows) -> Path:
        return self.directory.write_csv(name, columns, rows)

    def save_figure(self, name: str, figure) -> Path:
        return self.directory.save_figure(name, figure)


class Protocol:
    """An experiment's phases and analysis (see the module's docstring). `name` is the name it
    runs under (one protocol may serve several registered experiments: ood and layouts)."""

    AGENT_CELLS = staticmethod(centre_cell)
    """How the ISR finds the agents in an observation (`isr.model.isr_input`): the goals
    world's one agent at the centre of its view, unless a task says otherwise."""

    def __init__(self, name: str, config: ExperimentConfig) -> None:
        self.name, self.config = name, config

    @property
    def isr_network(self) -> ISRNetwork:
        """The ISR network that the `isr` settings train (`ISRConfig.network`)."""
        return self.config.isr.network(self.AGENT_CELLS)

    def describe(self) -> dict:
        """What `config.json` holds beside the settings (update counts, the environment)."""
        return {}

    RENDERED: tuple[str, ...] = ("socialized",)
    """The saved policies (`saved_policies`) that `internalize render` shows side by side."""

    @classmethod
    def render_world(cls, config: dict) -> tuple[Any, dict]:
        """The environment a run played in and the tasks its policies are rendered on ({task:
        env params}; one task, None, where it has none named), from its `config.json`. By
        default the goals world with the run's `n_blocks`."""
        from internalize.envs.goals import GoalsEnv

        env_config = config.get("env", {})
        world = env_config.get("world", "goals")
        if world != "goals":
            raise ValueError(
                f"the run is in the world {world!r}; render draws only the goals and boulder worlds"
            )
        env = GoalsEnv()
        max_steps = env_config.get("max_steps")
        return env, {None: env.make_params(n_blocks=config["n_blocks"], max_steps=max_steps)}

    @classmethod
    def render_panels(cls, config: dict, task: Any) -> list[tuple[str, str]]:
        """(panel title, saved policy name) of each panel of `task`'s GIF."""
        return [(name, name) for name in cls.RENDERED]

    @classmethod
    def render_label(cls, name: str, config: dict, task: Any) -> tuple[str, str]:
        """(file stem, title) of the GIF of `task` in a run of experiment `name`."""
        return (name, name) if task is None else (f"{name}-{task}", str(task))

    @classmethod
    def saved_policies(cls, config: dict) -> dict[str, tuple[str, tuple[int, ...], int]]:
        """The policies a run of this protocol saves, by name, from its `config.json`: (entry of
        `checkpoints.msgpack`, leading index before the seed's, offset added to the seed's
        index). By default the socialized learner and, in the entry `autonomy` [conditions,
        seeds], each of the run's `conditions`; names whose entry a run lacks are not there."""
        found = {"socialized": ("socialized", (), 0)}
        for index, condition in enumerate(config.get("conditions", [])):
            found[condition] = ("autonomy", (index,), 0)
        return found

    def planned_steps(self) -> int:
        raise NotImplementedError

    def phases(self, run: Run) -> Any:
        raise NotImplementedError

    def analyse(self, outcome: Any, run: Run) -> dict:
        raise NotImplementedError

    def batch_key(self) -> Any:
        """Runs of this protocol whose keys are equal (and not None) may compute their phases
        together (`phases_together`): their settings differ only in values that can be arrays
        of one compiled call. None (the default): this run computes its phases alone."""
        return None

    @classmethod
    def phases_together(cls, protocols: list["Protocol"], runs: list[Run]) -> list[Any]:
        """The phases of several runs of equal `batch_key`, each outcome as `phases` gives it."""
        return [protocol.phases(run) for protocol, run in zip(protocols, runs, strict=True)]


def protocol(name: str, config: ExperimentConfig) -> Protocol:
    """Experiment `name`'s protocol with `config`, checked (ValueError) and ready to run."""
    return registry.get(name).protocol_class()(name, config)


def planned_steps(name: str, config: ExperimentConfig) -> int:
    """Environment steps experiment `name` takes with `config`."""
    return protocol(name, config).planned_steps()


def run_experiment(
    name: str, config: ExperimentConfig, out: str | os.PathLike, progress: Any = True
) -> dict:
    """Run experiment `name` into the new directory `out` (a bar of its own if `progress` is
    True, none if False, or a shared one); returns what `results.json` holds."""
    return run_together(name, [config], [out], progress)[0]


def run_together(
    name: str, configs: list[ExperimentConfig], outs: list, progress: Any = True
) -> list[dict]:
    """Run experiment `name` once per config, each into its new directory of `outs`, the
    phases of all computed together (`Protocol.phases_together`; their `batch_key`s must be
    equal unless there is one config); returns each run's results."""
    started = time.perf_counter()
    experiments = [protocol(name, config) for config in configs]
    keys = {repr(experiment.batch_key()) for experiment in experiments}
    if len(experiments) > 1 and (len(keys) > 1 or experiments[0].batch_key() is None):
        raise ValueError(f"these runs of {name} cannot compute their phases together")
    directories = [RunDirectory(out) for out in outs]
    found_versions = versions()
    resolved = []
    for experiment, directory in zip(experiments, directories, strict=True):
        config = experiment.config
        resolved.append(
            {
                "experiment": name,
                **dataclasses.asdict(config),
                "seed_list": config.seed_list,
                **experiment.describe(),
            }
        )
        directory.write_json("config.json", resolved[-1])
        directory.write_json("versions.json", found_versions)
    bar = open_progress(progress, sum(experiment.planned_steps() for experiment in experiments))
    runs = [
        Run(directory, bar, config.seed_list, *seed_keys(config.seed_list))
        for directory, config in zip(directories, configs, strict=True)
    ]
    try:
        outcomes = type(experiments[0]).phases_together(experiments, runs)
    finally:
        bar.close()
    found = []
    for experiment, run, outcome, saved in zip(experiments, runs, outcomes, resolved, strict=True):
        config = experiment.config
        numbers = experiment.analyse(outcome, run)
        results = {
            "experiment": name,
            "preset": config.preset,
            "seeds": config.seed_list,
            **numbers,
            "config": saved,
            "versions": found_versions,
            "timings": {**run.timings, "total_s": time.perf_counter() - started},
        }
        run.directory.finish(results)
        found.append(results)
    return found
