"""Every setting reachable: `--set KEY=VALUE`, `--config FILE`, help from the dataclasses, and a
run's config.json given back to rerun it exactly."""

import json
import subprocess
import sys

import pytest

from internalize import config as settings
from internalize.cli import main
from internalize.experiments.configs import resolve_config
from internalize.experiments.retention import RetentionConfig


def test_dotted_keys_reach_nested_settings():
    config = settings.assign(
        RetentionConfig(),
        ["ppo.learning_rate=3e-4", "isr.epochs=4", "seeds=3", "ppo.head_widths=16,16"],
    )
    assert config.ppo.learning_rate == 3e-4 and config.isr.epochs == 4.0
    assert config.seeds == 3 and config.ppo.head_widths == (16, 16)
    # Everything else is as the preset has it.
    assert config.ppo.replace(learning_rate=1e-3, head_widths=(32,)) == RetentionConfig().ppo


def test_a_schedule_by_kind_then_its_values():
    for order in (
        ["schedule=fading", "schedule.fade_steps=30000"],
        ["schedule.fade_steps=30000", "schedule=fading"],
    ):
        config = settings.assign(RetentionConfig(), order)
        assert (config.schedule.kind, config.schedule.fade_steps) == ("fading", 30_000)


def test_every_experiment_has_the_presets_the_command_line_offers():
    from internalize.cli import PRESET_NAMES
    from internalize.experiments.registry import REGISTRY

    for name, record in REGISTRY.items():
        config = record.config_class()
        presets = sorted(config.PPO_PRESETS), sorted(config.ISR_PRESETS)
        assert presets == (sorted(PRESET_NAMES),) * 2, name
    cnn = resolve_config("retention", None, {"preset": "fast-cnn"}, [])
    fast = resolve_config("retention", None, {"preset": "fast"}, [])
    assert cnn.ppo.network == "paper_cnn" and fast.ppo.network == "mlp"
    assert cnn.ppo.replace(network="mlp", trunk_width=64, head_widths=(32,)) == fast.ppo
    assert cnn.isr == fast.isr


def test_the_preset_sets_the_defaults_whoever_gives_it():
    paper = resolve_config("retention", None, {"preset": "paper"}, ["ppo.learning_rate=5e-5"])
    assert paper.ppo.network == "paper_cnn" and paper.ppo.learning_rate == 5e-5
    assert paper.isr.batch_size == 1  # the paper's ISR training
    # The prosocial experiment has presets of its own.
    assert resolve_config("prosocial", None, {}, []).ppo.ent_coef == 0.01


@pytest.mark.parametrize(
    ("assignments", "message"),
    [
        (["ppo.learnin_rate=1"], r"unknown setting\(s\) ppo.learnin_rate; known: ppo.network"),
        (["nonsense=1"], r"unknown setting\(s\) nonsense"),
        (["seeds=many"], "seeds: expected int, got 'many'"),
        (["seeds=2.5"], "seeds: expected int, got '2.5'"),
        (["ppo.learning_rate=fast"], "ppo.learning_rate: expected float"),
        (["seeds=0"], "seeds must be >= 1, got 0"),
        (["ppo.minibatch_size=100"], "minibatch_size 100 must divide the rollout size"),
        (["schedule=sudden"], "unknown schedule 'sudden'"),
        (["schedule.episode_share=2"], r"episode_share must lie in \(0, 1\]"),
        (["ppo.learning_rate"], "--set takes KEY=VALUE"),
        (["preset=slow"], "unknown preset 'slow'"),
        (["reward_form=instead"], r"unknown reward_form 'instead'; known: \['add', 'replace'"),
    ],
)
def test_bad_settings_are_named(assignments, message):
    with pytest.raises(ValueError, match=message):
        resolve_config("retention", None, {}, assignments)


def test_toml_file_then_options_then_set(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text("seeds = 4\n[ppo]\nlearning_rate = 2e-3\nhead_widths = [8]\n")
    config = resolve_config("retention", path, {"seeds": 5}, ["ppo.num_epochs=2"])
    assert config.seeds == 5 and config.ppo.num_epochs == 2
    assert config.ppo.learning_rate == 2e-3 and config.ppo.head_widths == (8,)
    path.write_text("[ppo]\nlearning_rate = 'high'\n")
    with pytest.raises(ValueError, match="ppo.learning_rate: expected float, got 'high'"):
        resolve_config("retention", path, {}, [])
    path.write_text("seeds = [")
    with pytest.raises(ValueError, match="is not valid TOML"):
        resolve_config("retention", path, {}, [])


def test_help_lists_every_setting_with_its_default_and_docstring(capsys):
    with pytest.raises(SystemExit):
        main(["reproduce", "retention", "--help"])
    shown = capsys.readouterr().out
    assert "ppo.learning_rate (float, default 0.001)" in shown
    assert "Adam step size (constant)." in shown
    assert "schedule.kind (str, default 'two_phase')" in shown


def test_a_bad_setting_on_the_command_line_exits_2_and_creates_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["reproduce", "retention", "--set", "ppo.learnin_rate=1", "--out", str(out)])
    assert code == 2 and not out.exists()
    assert "unknown setting(s) ppo.learnin_rate" in capsys.readouterr().err


def test_a_runs_config_json_reruns_it_exactly(tmp_path):
    """A tiny retention run with settings changed in every way there is, then the same run
    from its config.json alone: the same config and every number of metrics.csv the same."""
    first, second = tmp_path / "first", tmp_path / "second"
    tiny = ["--quiet", "--deterministic", "--socialize-steps", "4096", "--autonomy-steps", "2048"]
    changed = [
        *("--seeds", "1", "--first-seed", "7"),
        *("--set", "ppo.learning_rate=2e-3", "--set", "schedule=fading"),
        *("--set", "schedule.fade_steps=1024", "--set", "isr.epochs=1"),
    ]
    command = [sys.executable, "-m", "internalize.cli", "reproduce", "retention"]
    for out, extra in ((first, changed), (second, ["--config", str(first / "config.json")])):
        done = subprocess.run(
            [*command, *tiny, *extra, "--out", str(out)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]
    saved = [json.loads((out / "config.json").read_text()) for out in (first, second)]
    assert saved[0] == saved[1]
    assert saved[0]["schedule"]["kind"] == "fading" and saved[0]["ppo"]["learning_rate"] == 2e-3
    assert (first / "metrics.csv").read_text() == (second / "metrics.csv").read_text()
    # The config of another experiment is refused, by name.
    with pytest.raises(ValueError, match="config of a 'retention' run, not 'hacking'"):
        resolve_config("hacking", first / "config.json", {}, [])
