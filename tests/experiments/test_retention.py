"""A tiny end-to-end run of `internalize reproduce retention`, its run directory and its refusals.

The run happens once per module (its cost is mostly XLA compilation). The crash test reuses what
that run computed: its phases are replayed from a record, so that only the writing of the run
directory, where the crash happens, runs again.
"""

import contextlib
import csv
import dataclasses
import io
import json

import numpy as np
import pytest
from PIL import Image

import internalize.experiments.retention as retention
import internalize.learners.ppo as ppo
from internalize.cli import main
from internalize.experiments.common import LOCK_FILE
from internalize.experiments.retention import Retention, RetentionConfig
from internalize.experiments.runner import run_together
from internalize.learners.ppo import METRIC_NAMES
from internalize.social.caregiver import ScheduleConfig

SEEDS = 2
STEPS = 4096  # two fast-preset rollouts of 2048 steps per phase
UPDATES = 2
CONDITIONS = ("oracle", "none", "isr")
RUN_FILES = {
    "config.json",
    "versions.json",
    "metrics.csv",
    "retention.png",
    "checkpoints.msgpack",
    "results.json",
}


def argv(out, *extra):
    return [
        "reproduce",
        "retention",
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


def snapshot(directory):
    """{name: (bytes, mtime_ns)} of every file in `directory`."""
    return {
        path.name: (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(directory.iterdir())
    }


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Run the CLI once; record what each phase returned, for the crash test to replay."""
    out = tmp_path_factory.mktemp("retention") / "run"
    recorded = {}

    def recording(name, function):
        def wrapper(*args, **kwargs):
            recorded[name] = function(*args, **kwargs)
            return recorded[name]

        return wrapper

    stdout = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(stdout):
        for name in ("socialize", "train_isr", "autonomy_variants"):
            patch.setattr(retention, name, recording(name, getattr(retention, name)))
        code = main(argv(out))
    return out, code, json.loads(stdout.getvalue()), recorded


def read_json(path):
    return json.loads(path.read_text())


def read_metrics(path):
    with path.open(newline="") as file:
        reader = csv.DictReader(file)
        return reader.fieldnames, list(reader)


# ------------------------------------------------------------------------- the tiny run


def test_the_run_succeeds_and_writes_every_file(tiny_run):
    out, code, printed, _ = tiny_run
    assert code == 0
    # No temporary files left; the lock file says the CLI held the directory.
    assert {path.name for path in out.iterdir()} == RUN_FILES | {LOCK_FILE}
    assert printed["experiment"] == "retention" and printed["run_dir"] == str(out)
    assert set(printed["summary"]) == set(CONDITIONS)
    assert set(printed["goals_ratio_to_oracle"]) == {"none/oracle", "isr/oracle"}


def test_config_and_versions(tiny_run):
    out, *_ = tiny_run
    config = read_json(out / "config.json")
    assert config["experiment"] == "retention" and config["preset"] == "fast"
    assert config["seeds"] == SEEDS and config["seed_list"] == [1234, 1235]
    assert config["socialize_updates"] == UPDATES and config["autonomy_updates"] == UPDATES
    assert config["conditions"] == list(CONDITIONS)
    assert config["ppo"]["network"] == "mlp" and config["ppo"]["num_envs"] == 32
    assert config["env"] == {
        "world": "goals",
        "size": 7,
        "n_blocks": 3,
        "obs_shape": [9, 9, 4],
        "num_actions": 3,
        "max_steps": 20,
    }
    versions = read_json(out / "versions.json")
    for package in ("python", "internalize", "jax", "jaxlib", "flax", "optax", "numpy"):
        assert versions[package], package
    assert versions["internalize"] != "not installed"


def test_metrics_csv(tiny_run):
    out, *_ = tiny_run
    columns, rows = read_metrics(out / "metrics.csv")
    assert columns == ["seed", "phase", "condition", "update", *METRIC_NAMES]
    assert len(rows) == SEEDS * (UPDATES + len(CONDITIONS) * UPDATES) == 16
    for seed in ("1234", "1235"):
        social = [row for row in rows if row["seed"] == seed and row["phase"] == "socialization"]
        assert [row["update"] for row in social] == ["0", "1"]
        # Steps are counted over the run: socialization 2048, 4096; autonomy goes on from there.
        assert [float(row["step"]) for row in social] == [2048.0, 4096.0]
        assert all(float(row["presence"]) == 1.0 for row in social)
        for condition in CONDITIONS:
            phase = [row for row in rows if row["seed"] == seed and row["condition"] == condition]
            assert [row["phase"] for row in phase] == ["autonomy"] * UPDATES
            assert [float(row["step"]) for row in phase] == [6144.0, 8192.0]
            presence = 1.0 if condition == "oracle" else 0.0
            assert all(float(row["presence"]) == presence for row in phase), condition
            if condition != "isr":
                assert all(float(row["internal_reward"]) == 0.0 for row in phase)
    for row in rows:  # every value is a finite number
        assert all(np.isfinite(float(row[name])) for name in METRIC_NAMES)
        # The true return is R_e + R_s, and R_s is 0.4 a goal.
        assert float(row["true_return"]) == pytest.approx(
            float(row["env_reward"]) + float(row["social_reward"]), abs=1e-5
        )
        assert float(row["social_reward"]) == pytest.approx(
            0.4 * float(row["goals_per_episode"]), abs=1e-5
        )


def test_the_figure_decodes(tiny_run):
    out, *_ = tiny_run
    with Image.open(out / "retention.png") as image:
        image.load()
        assert image.format == "PNG"
        assert image.width > 400 and image.height > 200


def test_results_json_shape(tiny_run):
    out, *_ = tiny_run
    results = read_json(out / "results.json")
    required = {"experiment", "preset", "seeds", "conditions", "config", "versions", "timings"}
    assert required <= set(results)
    assert results["experiment"] == "retention" and results["preset"] == "fast"
    assert results["seeds"] == [1234, 1235]
    assert all(isinstance(seed, int) for seed in results["seeds"])
    assert set(results["conditions"]) == set(CONDITIONS)
    for condition in CONDITIONS:
        for name in ("goals_per_episode", "return"):
            values = results["conditions"][condition][name]
            assert isinstance(values, list) and len(values) == SEEDS, (condition, name)
            assert all(isinstance(value, float) for value in values)
    assert results["config"] == read_json(out / "config.json")
    assert results["versions"]["jax"] == read_json(out / "versions.json")["jax"]
    timings = results["timings"]
    assert set(timings) == {"socialization", "isr", "autonomy", "total_s"}
    assert timings["socialization"]["steps"] == SEEDS * STEPS
    assert timings["autonomy"]["steps"] == SEEDS * STEPS * len(CONDITIONS)
    assert timings["total_s"] > timings["socialization"]["run_s"] > 0


def test_results_agree_with_metrics(tiny_run):
    """Headline numbers are the means over the last 10% of the autonomy updates (here the last
    one) of metrics.csv's goals per episode and true return."""
    out, *_ = tiny_run
    results = read_json(out / "results.json")
    _, rows = read_metrics(out / "metrics.csv")
    for condition in CONDITIONS:
        for s, seed in enumerate(results["seeds"]):
            last = next(
                row
                for row in rows
                if row["seed"] == str(seed)
                and row["condition"] == condition
                and row["update"] == str(UPDATES - 1)
            )
            entry = results["conditions"][condition]
            assert entry["goals_per_episode"][s] == pytest.approx(float(last["goals_per_episode"]))
            assert entry["return"][s] == pytest.approx(float(last["true_return"]))
        summary = results["summary"][condition]["goals_per_episode"]
        goals = results["conditions"][condition]["goals_per_episode"]
        assert summary["mean"] == pytest.approx(np.mean(goals))
        assert summary["se"] == pytest.approx(np.std(goals, ddof=1) / np.sqrt(SEEDS))
        assert summary["ci_low"] <= summary["mean"] <= summary["ci_high"]
    isr = results["isr_model"]
    assert (isr["train_samples"], isr["test_samples"]) == (3686, 410)  # 90/10 of 4096
    assert len(isr["test_mse"]) == SEEDS and all(np.isfinite(isr["test_mse"]))


# ---------------------------------------------------------------------------- refusals


def test_runs_computed_together_give_the_numbers_of_a_run_alone(tiny_run, tmp_path):
    """Two runs that differ only in the caregiver's schedule, their phases computed together
    (one socialization and ISR, both autonomies in one compiled call per group of conditions):
    the first is the tiny run, bit for bit; the second left as `fading` says."""
    out, *_ = tiny_run
    base = RetentionConfig(seeds=SEEDS, socialize_steps=STEPS, autonomy_steps=STEPS)
    fading = dataclasses.replace(base, schedule=ScheduleConfig("fading", fade_steps=STEPS))
    assert Retention("retention", base).batch_key() == Retention("retention", fading).batch_key()
    outs = [tmp_path / "two_phase", tmp_path / "fading"]
    results = run_together("retention", [base, fading], outs, progress=False)
    assert (outs[0] / "metrics.csv").read_bytes() == (out / "metrics.csv").read_bytes()
    assert results[1]["timings"]["autonomy"]["shared"] is True
    _, rows = read_metrics(outs[1] / "metrics.csv")
    presence = [
        float(r["presence"]) for r in rows if r["condition"] == "none" and r["seed"] == "1234"
    ]
    assert presence[0] > presence[-1] > 0.0  # fading, not gone at once: 2 updates over 4096 steps


def test_the_gpu_path_runs_side_by_side_and_works_on_a_cpu(tiny_run, tmp_path, monkeypatch):
    """Where JAX runs on a GPU or TPU, runs that no setting places (`parallel_runs` None) are
    vmapped: the learners, the ISRs and the evaluations. Made to take that path here, the tiny
    run finishes with the same table, its first update the same but for rounding."""
    out, *_ = tiny_run
    asked = []

    def on_a_gpu():
        asked.append(True)
        return True

    monkeypatch.setattr(ppo, "side_by_side_by_default", on_a_gpu)
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(argv(tmp_path / "vmapped")) == 0
    assert len(asked) >= 3  # socialization, the ISR and autonomy each chose the GPU path
    (columns, side_by_side), (_, alone) = (
        read_metrics(directory / "metrics.csv") for directory in (tmp_path / "vmapped", out)
    )
    assert columns == ["seed", "phase", "condition", "update", *METRIC_NAMES]
    assert [row["phase"] for row in side_by_side] == [row["phase"] for row in alone]
    for row in side_by_side:
        assert all(np.isfinite(float(row[name])) for name in METRIC_NAMES)
    first = [(a, b) for a, b in zip(side_by_side, alone, strict=True) if a["update"] == "0"]
    for vmapped, mapped in first[:SEEDS]:  # each seed's first socialization update
        np.testing.assert_allclose(
            [float(vmapped[name]) for name in METRIC_NAMES],
            [float(mapped[name]) for name in METRIC_NAMES],
            rtol=1e-4,
            atol=1e-5,
        )


@pytest.mark.parametrize(
    ("changes", "together"),
    [
        ({"isr_threshold": 0.3}, False),  # None and a number: another structure
        ({"schedule": ScheduleConfig("intermittent", episode_share=0.5)}, True),
        ({"ppo": RetentionConfig().ppo.replace(learning_rate=7e-4)}, False),
        ({"seeds": 3}, False),
    ],
)
def test_which_runs_may_compute_their_phases_together(changes, together):
    base = RetentionConfig()
    other = dataclasses.replace(base, **changes)
    keys = [Retention("retention", config).batch_key() for config in (base, other)]
    assert (keys[0] == keys[1]) is together
    with_threshold = dataclasses.replace(base, isr_threshold=0.1)
    assert (
        Retention("retention", with_threshold).batch_key()
        == Retention("retention", dataclasses.replace(base, isr_threshold=0.4)).batch_key()
    )


def test_a_finished_run_is_never_overwritten(tiny_run, capsys):
    out, *_ = tiny_run
    before = snapshot(out)
    assert main(argv(out)) == 2
    error = capsys.readouterr().err
    assert str(out) in error and "already holds a finished run" in error
    assert snapshot(out) == before


def test_an_interrupted_run_is_left_as_it_is(tmp_path, capsys):
    out = tmp_path / "interrupted"
    out.mkdir()
    (out / "config.json").write_text('{"partial": true}\n')
    before = snapshot(out)
    assert main(argv(out)) == 2
    error = capsys.readouterr().err
    assert str(out) in error and "is not empty" in error
    assert snapshot(out) == before


def test_out_may_not_be_a_file(tmp_path, capsys):
    out = tmp_path / "a-file"
    out.write_text("x")
    assert main(argv(out)) == 2
    assert "exists and is not a directory" in capsys.readouterr().err
    assert out.read_text() == "x"


def test_a_crash_mid_run_leaves_no_results(tiny_run, tmp_path, monkeypatch):
    """The figure fails after training: what was written stays, and results.json, the mark of
    a finished run, is absent. The phases are replayed from the tiny run's record."""
    _, _, _, recorded = tiny_run
    assert set(recorded) == {"socialize", "train_isr", "autonomy_variants"}
    for name, value in recorded.items():
        monkeypatch.setattr(retention, name, lambda *args, value=value, **kwargs: value)

    def broken_figure(*args, **kwargs):
        raise RuntimeError("figure failed")

    monkeypatch.setattr(retention, "phase_figure", broken_figure)
    out = tmp_path / "crashed"
    with pytest.raises(RuntimeError, match="figure failed"):
        main(argv(out))
    written = {path.name for path in out.iterdir()}
    before_figure = {"config.json", "versions.json", "checkpoints.msgpack", "metrics.csv"}
    assert written == before_figure | {LOCK_FILE}
    assert not (out / "results.json").exists()
    # The files written before the crash are whole.
    assert read_json(out / "config.json")["experiment"] == "retention"
    _, rows = read_metrics(out / "metrics.csv")
    assert len(rows) == 16
    # And the directory now counts as an interrupted run.
    assert main(argv(out)) == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--seeds", "0"], "expected an integer >= 1, got '0'"),
        (["--socialize-steps", "-5"], "expected an integer >= 1, got '-5'"),
        (["--autonomy-steps", "many"], "expected an integer >= 1, got 'many'"),
        (["--first-seed", "-1"], "expected an integer >= 0, got '-1'"),
        (["--preset", "slow"], "invalid choice: 'slow'"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_exit_2(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv(tmp_path / "never", *extra))
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_unknown_experiment_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["reproduce", "boulders"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'boulders'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"preset": "slow"}, "unknown preset 'slow'"),
        ({"seeds": 0}, "seeds must be >= 1"),
        ({"first_seed": -1}, "first_seed must be >= 0"),
        ({"socialize_steps": 0}, "socialize_steps must be >= 1"),
        ({"autonomy_steps": -5}, "autonomy_steps must be >= 1"),
        ({"final_fraction": 0.0}, r"final_fraction must lie in \(0, 1\]"),
        ({"final_fraction": 1.5}, r"final_fraction must lie in \(0, 1\]"),
    ],
)
def test_retention_config_checks(changes, message):
    with pytest.raises(ValueError, match=message):
        RetentionConfig(**changes)


def test_retention_config_defaults_follow_the_paper():
    config = RetentionConfig()
    assert (config.seeds, config.socialize_steps, config.autonomy_steps) == (10, 120_000, 120_000)
    assert config.n_blocks == 3 and config.seed_list == list(range(1234, 1244))
