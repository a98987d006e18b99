"""Experiments as compositions: a world, a schedule and an ISR of one's own, by setting, in every
experiment that can take them (docs/research-core.md's table), and other packages' experiments,
worlds and ISRs through entry points."""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from internalize.experiments import registry
from internalize.experiments.configs import resolve_config
from internalize.experiments.runner import protocol

ROOT = Path(__file__).parents[2]
HAZARD = "examples.hazard_world:make_env"
WIDE = "examples.wide_isr:make_isr"
RETURNING = "examples.returning_caregiver:make_schedule"
TAKES = {
    # experiment: (world, schedule); every one takes isr.model
    "retention": (True, True),
    "hacking": (True, True),
    "overoptimization": (True, True),
    "scaling": (True, False),
    "ood": (False, True),
    "layouts": (False, True),
    "prosocial": (False, True),
    "departure": (True, False),
    "departure-boulder": (False, False),
}
"""What the docs say each built-in experiment takes."""


@pytest.fixture
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # where `examples.` imports from, as a user working in the repository


def test_the_table_covers_every_experiment_that_runs_a_learner():
    assert set(TAKES) == set(registry.REGISTRY) - {"teach"}


@pytest.mark.parametrize("name", sorted(TAKES))
def test_each_experiment_takes_what_the_docs_say(name, at_root):
    """Every component the table gives an experiment reaches its protocol; every one it does not
    is refused by name before anything runs."""
    world, schedule = TAKES[name]
    settings = [f"isr.model={WIDE}"]
    if world:
        settings += [f"world={HAZARD}", "ppo.obs_scale=1.0"]
    if schedule:
        settings += [f"schedule={RETURNING}"]
    built = protocol(name, resolve_config(name, None, {}, settings))
    assert type(built.isr_network).__name__ == "WideISR"
    if world:
        assert type(built.ppo.env).__module__ == "examples.hazard_world"
    if schedule:
        presence = built.config.schedule.presence(1000.0)
        assert (float(presence.after), float(presence.episode_share)) == (0.5, 0.25)
    if not world:
        with pytest.raises(ValueError, match="world"):
            resolve_config(name, None, {}, [f"world={HAZARD}"])
    if not schedule:
        with pytest.raises(ValueError, match="schedule"):
            resolve_config(name, None, {}, ["schedule=fading"])


@pytest.mark.parametrize(
    ("setting", "said"),
    [
        ("world=nowhere_at_all:make_env", "world 'nowhere_at_all:make_env' cannot be loaded"),
        ("world=hazard", "world 'hazard': give one of"),
        ("isr.model=examples.wide_isr:nothing", "isr.model 'examples.wide_isr:nothing' cannot"),
        ("isr.model=examples.hazard_world:make_env", "isr.model .* failed to build"),
        ("schedule=examples.nowhere:make_schedule", "schedule 'examples.nowhere:make_schedule'"),
        ("schedule=fadingg", "schedule 'fadingg': give one of"),
    ],
)
def test_a_bad_component_is_named_and_nothing_is_created(setting, said, tmp_path, at_root, capsys):
    from internalize.cli import main

    out = tmp_path / "run"
    assert main(["reproduce", "hacking", "--set", setting, "--out", str(out), "--quiet"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("internalize: error:"), lines
    assert re.search(said, lines[0]), lines[0]
    assert not out.exists()


def test_a_schedule_of_ones_own_that_gives_no_presence_is_named(at_root):
    from internalize.social.caregiver import ScheduleConfig

    with pytest.raises(ValueError, match="gave slice, not a Presence"):
        ScheduleConfig(kind="builtins:slice").presence(0.0)
    with pytest.raises(ValueError, match="failed to build: TypeError"):
        ScheduleConfig(kind="examples.hazard_world:make_env").presence(0.0)


def test_the_wide_isr_learns_the_hazard_worlds_caregiver(at_root):
    """The example ISR, named by `isr.model`, fits the caregiver's reward on random-policy data
    of the hazard world with the paper's trainer: its test error ends well below the variance
    of what it predicts (the error of predicting the mean), on each of 3 seeds. Measured on the
    Xeon: 0.33-0.38 of the variance (the paper's network: 0.17-0.21); the bound is 0.6."""
    import examples.hazard_world as hazard
    from internalize.isr.train import ISRConfig, ISRDataset, make_isr_train

    env, envs, steps = hazard.make_env(), 1024, 32
    params = env.make_params()

    def collect(key):
        def one(key):
            def step(state, key):
                key_action, key_step = jax.random.split(key)
                obs = env.observe(state)
                action = jax.random.randint(key_action, (), 0, env.num_actions)
                state, transition = env.step(key_step, state, action, params)
                return state, (obs, action, transition.social_reward)

            key_reset, key_steps = jax.random.split(key)
            first = env.reset(key_reset, params)
            return jax.lax.scan(step, first, jax.random.split(key_steps, steps))[1]

        obs, action, social = jax.vmap(one)(jax.random.split(key, envs))
        return ISRDataset(
            obs=obs.reshape(-1, *env.obs_shape),
            action=action.reshape(-1).astype(jnp.int32),
            social_reward=social.reshape(-1),
        )

    config = ISRConfig(model=WIDE, batch_size=64, epochs=8.0, learning_rate=1e-3, balance=False)
    assert type(config.network()).__name__ == "WideISR"
    train, gather = jax.jit(make_isr_train(config, envs * steps)), jax.jit(collect)
    for seed in range(3):
        data = gather(jax.random.key(10 + seed))
        trained = train(jax.random.key(seed), data)
        variance = float(jnp.var(jnp.maximum(data.social_reward, 0.0)))
        assert variance > 0.01
        assert float(trained.test_mse) < 0.6 * variance, (seed, float(trained.test_mse), variance)


PLUGIN = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "internalize-plugin-example"
        version = "0.1"

        [project.entry-points."internalize.experiments"]
        careful = "careful_plugin:RECORD"
        broken = "careful_plugin.missing:RECORD"

        [project.entry-points."internalize.worlds"]
        hazard = "careful_plugin:make_world"

        [project.entry-points."internalize.isrs"]
        wide = "careful_plugin:make_isr"

        [project.entry-points."internalize.schedules"]
        returning = "careful_plugin:make_schedule"
    """,
    "careful_plugin/__init__.py": '''
        """A package of one's own: an experiment (retention in the hazard world, with a wide
        ISR), the world and the ISR, each registered by an entry point."""
        from dataclasses import dataclass

        from internalize.experiments.registry import Experiment
        from internalize.experiments.retention import Retention, RetentionConfig


        def make_world():
            from examples.hazard_world import make_env

            return make_env()


        def make_isr(agent_cells):
            from examples.wide_isr import make_isr

            return make_isr(agent_cells)


        def make_schedule(switch_step, config):
            from examples.returning_caregiver import make_schedule

            return make_schedule(switch_step, config)


        @dataclass(frozen=True)
        class CarefulConfig(RetentionConfig):
            world: str = "hazard"


        RECORD = Experiment(
            "careful",
            "careful_plugin",
            CarefulConfig,
            Retention,
            "Careful",
            "retention in the hazard world (a package of one's own)",
            "Retention's protocol in the hazard world, with a wide ISR.",
            in_all=False,
            renders=False,
        )
    ''',
}


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    """The package above, installed by pip into a folder of its own; the environment in which
    a command sees it installed."""
    source = tmp_path_factory.mktemp("plugin-source")
    for name, text in PLUGIN.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(textwrap.dedent(text).lstrip())
    target = tmp_path_factory.mktemp("plugin-installed")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--no-index", "--target", str(target), str(source)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    shutil.rmtree(source)
    path = os.pathsep.join([str(target), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path}


def internalize(environment, *words, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "internalize.cli", *words],
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd,
    )


def test_an_installed_packages_experiment_reaches_the_command_line(plugin, tmp_path):
    listed = internalize(plugin, "reproduce", "--help")
    assert listed.returncode == 0 and "careful" in listed.stdout
    assert "retention in the hazard world" in listed.stdout
    settings = internalize(plugin, "reproduce", "careful", "--help")
    assert settings.returncode == 0 and "world (str, default 'hazard')" in settings.stdout
    # Its broken sibling is named with the reason, and only when it is asked for.
    broken = internalize(plugin, "reproduce", "broken", "--out", str(tmp_path / "b"))
    assert broken.returncode == 2
    assert "experiment 'broken' cannot be loaded: No module named" in broken.stderr
    assert not (tmp_path / "b").exists()
    # Without the package, the names mean nothing.
    alone = internalize(
        {k: v for k, v in plugin.items() if k != "PYTHONPATH"}, "reproduce", "--help"
    )
    assert "careful" not in alone.stdout


@pytest.mark.slow
def test_an_installed_packages_experiment_runs_with_its_world_and_isr(plugin, tmp_path):
    out = tmp_path / "run"
    done = internalize(
        plugin,
        *("reproduce", "careful", "--seeds", "2", "--quiet", "--out", str(out)),
        *("--socialize-steps", "4096", "--autonomy-steps", "4096"),
        *("--set", "isr.model=wide", "--set", "ppo.obs_scale=1.0", "--set", "schedule=returning"),
        cwd=tmp_path,  # not the repository: the package's names are enough
    )
    assert done.returncode == 0, done.stderr[-3000:]
    config = json.loads((out / "config.json").read_text())
    assert config["experiment"] == "careful" and config["world"] == "hazard"
    assert config["isr"]["model"] == "wide" and config["env"]["obs_shape"] == [5, 5, 3]
    assert config["schedule"]["kind"] == "returning"
    results = json.loads((out / "results.json").read_text())
    assert set(results["conditions"]) == {"oracle", "none", "isr"}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["retention", "hacking", "overoptimization", "scaling", "ood"])
def test_each_experiment_runs_its_compositions(name, tmp_path, at_root):
    """A tiny run of each experiment with every component of one's own it takes."""
    world, schedule = TAKES[name]
    settings = ["--set", f"isr.model={WIDE}"]
    if world:
        settings += ["--set", f"world={HAZARD}", "--set", "ppo.obs_scale=1.0"]
    if schedule:
        settings += ["--set", f"schedule={RETURNING}"]
    steps = {
        "retention": ["--socialize-steps", "4096", "--autonomy-steps", "4096"],
        "hacking": ["--socialize-steps", "24576", "--autonomy-steps", "4096"],
        "overoptimization": [
            *("--socialize-steps", "24576", "--autonomy-steps", "4096", "--set", "members=2"),
            *("--set", "data_fractions=0.5,1.0", "--set", "hack_fraction=0.5"),
        ],
        "scaling": ["--socialize-steps", "8192", "--set", "sample_counts=2048,4096"],
        "ood": ["--socialize-steps", "4096", "--set", "frozen_steps=2048"]
        + ["--set", "transfer_steps=2048", "--set", "eval_episodes=2"],
    }[name]
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "internalize.cli", "reproduce", name, "--seeds", "2", "--quiet"]
        + ["--out", str(out), *steps, *settings],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    config = json.loads((out / "config.json").read_text())
    assert config["isr"]["model"] == WIDE
    if world:
        assert config["world"] == HAZARD and config["env"]["obs_shape"] == [5, 5, 3]
    assert (out / "results.json").is_file()
