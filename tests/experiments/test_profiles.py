"""The `original` profile: every SPEC §7 setting per experiment, laid under the user's own
settings, reachable from the command line, recorded in a run's config.json; and a tiny
prosocial run with it."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.cli import build_parser, main
from internalize.envs.boulder import BoulderRules
from internalize.experiments.configs import make_config, resolve_config
from internalize.experiments.profiles import (
    ORIGINAL_BOULDER,
    PROFILE_NAMES,
    PROFILES,
    profile_settings,
)
from internalize.experiments.prosocial import ProsocialConfig
from internalize.experiments.registry import REGISTRY
from internalize.experiments.runner import protocol
from internalize.experiments.suite import SuiteConfig

ISR = {"isr.axes": "original", "isr.conv_init": "torch"}
BOULDER = {
    f"boulder.{key}": value for key, value in dataclasses.asdict(BoulderRules.original()).items()
}
EXPECTED = {
    "retention": {**ISR, "reward_form": "add", "isr_threshold": None},
    "hacking": ISR,
    "overoptimization": ISR,
    "scaling": {
        **ISR,
        "isr.learning_rate": 3e-5,
        "isr.batch_size": 10,
        "isr.train_on_test": True,
    },
    "ood": {
        **ISR,
        "reward_form": "replace",
        "isr_threshold": 0.2,
        "greedy": True,
        "best_checkpoint_steps": 10_000,
    },
    "prosocial": {
        **ISR,
        **BOULDER,
        "reward_form": "alone",
        "isr_threshold": None,
        "isr.train_on_test": True,
        "ppo.obs_scale": 1.0,
    },
    "departure": {**ISR, "reward_form": "add", "isr_threshold": None},
    "departure-boulder": {
        **ISR,
        **BOULDER,
        "reward_form": "alone",
        "isr_threshold": None,
        "isr.train_on_test": False,  # its ISR learns from observed steps only
        "ppo.obs_scale": 1.0,
    },
}
EXPECTED["layouts"] = EXPECTED["ood"]
"""SPEC §7, experiment by experiment (written out, not read from the profile)."""


def value(config, key: str):
    for part in key.split("."):
        config = getattr(config, part)
    return config


def test_the_boulder_rules_of_the_profile_are_the_originals():
    assert ORIGINAL_BOULDER == dataclasses.asdict(BoulderRules.original())
    assert PROFILE_NAMES == ("original",)


def flat(tree: dict, prefix: str = "") -> dict:
    """A nested dict of settings by dotted key."""
    found = {}
    for key, item in tree.items():
        if isinstance(item, dict):
            found.update(flat(item, f"{prefix}{key}."))
        else:
            found[f"{prefix}{key}"] = item
    return found


@pytest.mark.parametrize("name", list(EXPECTED))
def test_the_original_profile_sets_each_setting_of_each_experiment(name):
    config = resolve_config(name, None, {"profile": "original"}, [])
    default = make_config(name)
    assert config.profile == "original" and default.profile is None
    for key, wanted in EXPECTED[name].items():
        assert value(config, key) == wanted, key
    # Nothing else moves: the profile changes only what SPEC §7 names.
    ours, theirs = flat(dataclasses.asdict(config)), flat(dataclasses.asdict(default))
    moved = {key for key in ours if ours[key] != theirs[key]}
    assert moved <= {"profile", *EXPECTED[name]}, name
    assert moved >= {"profile", "isr.axes", "isr.conv_init"}


def test_every_experiment_of_the_paper_has_the_profile_and_each_that_has_it_is_checked():
    """The `original` profile is the paper's code (SPEC §7): every experiment of the paper has
    it; one beyond the paper may, and then its settings are written out above too. A new
    experiment without it runs, and `--profile original` names what it lacks."""
    paper = {name for name, record in REGISTRY.items() if record.paper}
    assert paper <= set(EXPECTED)
    assert set(EXPECTED) == set(PROFILES["original"]) - {"teach"}
    assert profile_settings("original", "teach") == {}  # a person is not the original's script


@pytest.mark.parametrize("name", ["prosocial", "departure-boulder"])
def test_the_boulder_experiments_build_the_original_world(name):
    built = protocol(name, make_config(name, profile="original", seeds=1))
    assert built.env.rules == BoulderRules.original() and built.env.obs_shape == (9, 9, 7)
    obs = built.env.observe(built.env.reset(jax.random.key(0), built.env_params))
    # The learner's network sees the channels as they are: not divided by 255 (nor by 10).
    np.testing.assert_array_equal(built.ppo.features(obs), np.asarray(obs, np.float32))
    assert int(obs.max()) == 10  # the agents' type
    # SPEC §7: the ISR's input is 9x9x9 (7 channels and 2 actions), its x axis the channels.
    params = built.isr_network.init(jax.random.key(0), obs[None], jnp.zeros(1), jnp.zeros(1))
    kernels = {name: layer["kernel"].shape for name, layer in params["params"].items()}
    assert kernels["Conv2x2_0"] == (2, 2, 9, 16) and kernels["Dense_0"] == (32 * 7 * 7, 32)
    assert protocol(name, make_config(name, seeds=1)).env.obs_shape == (9, 9, 5)


def test_the_users_settings_win_over_the_profile_and_the_preset_combines():
    config = resolve_config(
        "prosocial",
        None,
        {"profile": "original", "preset": "paper", "isr_threshold": 0.3},
        ["boulder.order=learner_first", "isr.conv_init=orthogonal"],
    )
    assert config.isr_threshold == 0.3 and config.boulder.order == "learner_first"
    assert config.boulder.n_walls == 8 and config.boulder.partner == "original"
    assert (config.isr.axes, config.isr.conv_init) == ("original", "orthogonal")
    assert config.ppo.network == "paper_cnn" and config.ppo.obs_scale == 1.0  # paper, then 1
    assert (config.isr.batch_size, config.isr.epochs) == (10, 10.0)  # prosocial's paper ISR
    # The profile given by --set, after the options, is the same profile.
    assert resolve_config("ood", None, {}, ["profile=original", "greedy=false"]).greedy is False
    assert resolve_config("ood", None, {}, ["profile=original"]).greedy is True
    assert resolve_config("ood", None, {"profile": "original"}, ["profile=none"]).greedy is False


def test_an_unknown_profile_is_named(capsys):
    with pytest.raises(ValueError, match=r"unknown profile 'faithful'; known: \['original'\]"):
        resolve_config("prosocial", None, {}, ["profile=faithful"])
    with pytest.raises(ValueError, match=r"unknown profile 'faithful'; known: \['original'\]"):
        ProsocialConfig(profile="faithful")
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["reproduce", "ood", "--profile", "faithful"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'faithful' (choose from 'original')" in capsys.readouterr().err


def test_reproduce_all_and_sweep_take_the_profile():
    args = build_parser().parse_args(["reproduce", "all", "--quick", "--profile", "original"])
    assert args.profile == "original"
    assert build_parser().parse_args(["reproduce", "all"]).profile is None
    suite = SuiteConfig(profile="original", quick=True, seeds=1)
    prosocial = suite.experiment_config("prosocial")
    assert prosocial.boulder == BoulderRules.original() and prosocial.socialize_steps == 40_960
    assert suite.experiment_config("ood").best_checkpoint_steps == 10_000
    assert SuiteConfig(quick=True).experiment_config("ood").best_checkpoint_steps is None
    sweep = build_parser().parse_args(
        ["sweep", "ood", "--grid", "seeds=1,2", "--profile", "original"]
    )
    assert sweep.profile == "original"


STEPS = ["--socialize-steps", "128", "--autonomy-steps", "64"]
TINY = ["ppo.num_envs=4", "ppo.num_steps=16", "ppo.minibatch_size=32", "ppo.num_epochs=1"]


@pytest.mark.slow  # 50-80 s of compiling on 2 CPUs; the profile's settings are tested above
def test_a_tiny_prosocial_run_with_the_original_profile(tmp_path, capsys):
    """`reproduce prosocial --profile original --seeds 1` on tiny rollouts (4 x 16 steps), a
    user's --set over the profile; config.json records the profile and what it gave, and a
    rerun from that file resolves to the same settings. The user's settings here keep the
    paper's ISR axes: the original's convolutions cost about 15 s more to compile (measured),
    and the test above pins them."""
    out = tmp_path / "run"
    overrides = ["isr_threshold=0.3", "isr.axes=paper"]
    sets = [arg for item in [*TINY, *overrides] for arg in ("--set", item)]
    code = main(
        ["reproduce", "prosocial", "--profile", "original", "--seeds", "1", *STEPS, *sets]
        + ["--quiet", "--out", str(out)]
    )
    assert code == 0, capsys.readouterr().err
    saved = json.loads((out / "config.json").read_text())
    assert saved["profile"] == "original" and saved["boulder"] == ORIGINAL_BOULDER
    assert (saved["reward_form"], saved["isr_threshold"]) == ("alone", 0.3)
    assert saved["ppo"]["obs_scale"] == 1.0 and saved["isr"]["conv_init"] == "torch"
    assert saved["isr"]["axes"] == "paper" and saved["isr"]["train_on_test"] is True
    results = json.loads((out / "results.json").read_text())
    assert set(results["summary"]) == {"oracle", "none", "isr"}
    assert len(results["reward_map"]["walls"]) == 8  # the map's layout has the eighth block
    rerun = resolve_config("prosocial", out / "config.json", {}, [])
    assert json.loads(json.dumps(dataclasses.asdict(rerun))) == {
        key: value for key, value in saved.items() if key in dataclasses.asdict(rerun)
    }
