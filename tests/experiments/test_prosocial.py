"""Experiment E: a tiny end-to-end run of `internalize reproduce prosocial`, and a short run in
which the learner learns to help the partner."""

import csv
import json

import jax
import numpy as np
import pytest
from PIL import Image

from internalize.cli import main
from internalize.envs.boulder import BoulderEnv
from internalize.experiments.prosocial import PROSOCIAL_PRESETS, Prosocial, ProsocialConfig
from internalize.learners.ppo import METRIC_NAMES, PPO, over_runs
from internalize.social.rewards import caregiver_present

SEEDS = 2
STEPS = 4096
UPDATES = (20, 4)  # socialization, autonomy: `reproduce all --quick` (see `all_run`)
CONDITIONS = ("oracle", "none", "isr")
RUN_FILES = {
    "config.json",
    "versions.json",
    "metrics.csv",
    "prosocial.png",
    "episode.gif",
    "episode.png",
    "reward_map.png",
    "checkpoints.msgpack",
    "results.json",
}


def argv(out, *extra):
    return [
        "reproduce",
        "prosocial",
        "--seeds",
        str(SEEDS),
        "--socialize-steps",
        str(STEPS),
        "--autonomy-steps",
        str(STEPS),
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]


@pytest.fixture(scope="module")
def tiny_run(all_run):
    """The prosocial experiment of the tiny `reproduce all` run."""
    return (all_run / "prosocial",)


def test_the_run_writes_every_file(tiny_run):
    (out,) = tiny_run
    assert {path.name for path in out.iterdir()} == RUN_FILES | {"render"}  # `reproduce all`
    results = json.loads((out / "results.json").read_text())
    assert results["experiment"] == "prosocial" and set(results["summary"]) == set(CONDITIONS)
    config = json.loads((out / "config.json").read_text())
    assert config["env"]["task"] == "boulder" and config["env"]["max_steps"] == 100
    assert config["ppo"]["num_epochs"] == 20 and config["ppo"]["ent_coef"] == 0.01
    assert (config["socialize_updates"], config["autonomy_updates"]) == UPDATES


def test_results_agree_with_metrics(tiny_run):
    out, *_ = tiny_run
    results = json.loads((out / "results.json").read_text())
    with (out / "metrics.csv").open(newline="") as file:
        reader = csv.DictReader(file)
        assert reader.fieldnames == ["seed", "phase", "condition", "update", *METRIC_NAMES]
        rows = list(reader)
    social, later = UPDATES
    assert len(rows) == SEEDS * (social + len(CONDITIONS) * later)
    for condition in CONDITIONS:
        for s, seed in enumerate(results["seeds"]):
            last = next(
                row
                for row in rows
                if row["seed"] == str(seed)
                and row["condition"] == condition
                and row["update"] == str(later - 1)
            )
            entry = results["conditions"][condition]
            assert entry["helps_per_episode"][s] == pytest.approx(float(last["goals_per_episode"]))
            assert entry["return"][s] == pytest.approx(float(last["true_return"]))
    for row in rows:  # R_s is 0.4 for each time the partner reaches its goal
        assert float(row["social_reward"]) == pytest.approx(
            0.4 * float(row["goals_per_episode"]), abs=1e-5
        )
    assert set(results["helps_ratio_to_oracle"]) == {"none/oracle", "isr/oracle"}
    isr = results["isr_model"]
    assert (isr["train_samples"], isr["test_samples"]) == (36864, 4096)
    assert all(np.isfinite(isr["test_mse"]))
    episode = results["example_episode"]
    assert episode["condition"] == "isr" and episode["steps"] == 100


def test_the_pictures_decode(tiny_run):
    out, *_ = tiny_run
    with Image.open(out / "episode.gif") as gif:
        assert gif.size == (7 * 24, 7 * 24)
        # Pillow merges identical consecutive frames (the learner standing still) and adds up
        # their durations: 101 frames of 200 ms each.
        durations = []
        for frame in range(gif.n_frames):
            gif.seek(frame)
            durations.append(gif.info["duration"])
        assert sum(durations) == 101 * 200 and 1 < gif.n_frames <= 101
    with Image.open(out / "episode.png") as strip:
        strip.load()
        assert strip.width > 10 * strip.height
    with Image.open(out / "prosocial.png") as figure:
        figure.load()
        assert figure.width > 400


def test_a_finished_run_is_never_overwritten(tiny_run, capsys):
    out, *_ = tiny_run
    assert main(argv(out)) == 2
    assert "already holds a finished run" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--seeds", "0"], "expected an integer >= 1, got '0'"),
        (["--preset", "slow"], "invalid choice: 'slow'"),
    ],
)
def test_bad_arguments_exit_2(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv(tmp_path / "never", *extra))
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_one_seed_condition_numbers():
    """One seed: summaries and ratios are given, the Welch tests (which need two seeds) are
    there but not computable (p-value None)."""
    helps = {"oracle": 1.2, "none": 0.1, "isr": 1.1}
    per_seed = {c: {"helps_per_episode": [v], "return": [v / 2]} for c, v in helps.items()}
    numbers = Prosocial.condition_numbers(per_seed)
    assert numbers["helps_ratio_to_oracle"]["isr/oracle"] == pytest.approx(1.1 / 1.2)
    assert numbers["summary"]["isr"]["helps_per_episode"]["se"] is None
    assert set(numbers["tests"]) == {"none vs oracle", "isr vs oracle", "isr vs none"}
    assert all(test["p_value"] is None for test in numbers["tests"].values())
    assert numbers["tests"]["isr vs none"]["difference"] == pytest.approx(1.0)
    json.dumps(numbers, allow_nan=False)


def test_config_checks_and_defaults():
    with pytest.raises(ValueError, match="unknown preset 'slow'"):
        ProsocialConfig(preset="slow")
    config = ProsocialConfig()
    assert (config.socialize_steps, config.autonomy_steps, config.seeds) == (240_000, 240_000, 10)


def test_the_learner_learns_to_help():
    """2.4e5 steps with the caregiver present (the experiment's socialization), fast preset,
    3 seeds one after another; early and late are the means of the first and the last 10
    updates.

    A uniformly random learner helps about 0.2 times per episode (measured over 100,000 steps).
    Measured: the 10 seeds of `reproduce all` (deterministic mode) went from 0.15-0.29 early
    (mean 0.24) to 0.32-0.97 late (mean 0.59), each seed at least 1.46 times its early rate;
    the mean of the 3 worst seeds' late rates is 0.35. So the mean late rate of any 3 of those
    seeds clears 0.3. One seed decides nothing: at 1.6e5 steps (6 seeds) late ran from 0.26 to
    0.50, and on another CPU this test's former single seed ended at 0.37.
    """
    env = BoulderEnv()
    ppo = PPO(PROSOCIAL_PRESETS["fast"], env, env.make_params())
    present = caregiver_present()
    updates = ppo.config.num_updates(240_000)

    def helps(key):
        return ppo.run(ppo.init(key), present, updates)[1].goals_per_episode

    run = jax.jit(over_runs(helps, parallel=False))
    curves = np.asarray(run(jax.random.split(jax.random.key(0), 3)))
    early, late = curves[:, :10].mean(axis=1), curves[:, -10:].mean(axis=1)
    assert early.mean() < 0.35, early
    assert late.mean() > 0.3, late
    assert (late > 1.2 * early).all(), (early, late)
