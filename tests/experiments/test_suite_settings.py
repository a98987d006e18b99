"""`reproduce paper|all --set/--config`: a key for every experiment that has it, or `NAME.KEY`
for one; checked before anything is created, recorded for resuming."""

import json

import pytest

from internalize.cli import main
from internalize.experiments.suite import PAPER, SuiteConfig


def test_a_key_applies_to_every_experiment_that_has_it_and_a_named_one_to_that_alone():
    config = SuiteConfig(
        settings=("ppo.learning_rate=3e-4", "isr_threshold=0.3", "retention.isr.epochs=4"),
        quick=True,
    )
    for name in config.experiments:
        assert config.experiment_config(name).ppo.learning_rate == 3e-4
    assert config.experiment_config("retention").isr.epochs == 4
    assert config.experiment_config("hacking").isr.epochs != 4
    assert config.experiment_config("ood").isr_threshold == 0.3
    assert not hasattr(config.experiment_config("hacking"), "isr_threshold")
    # --quick's step counts stay where nothing overrides them; a later setting wins.
    later = SuiteConfig(
        settings=("socialize_steps=81920", "retention.socialize_steps=4096"), quick=True
    )
    assert later.experiment_config("retention").socialize_steps == 4096
    assert later.experiment_config("hacking").socialize_steps == 81920


@pytest.mark.parametrize(
    ("setting", "said"),
    [
        ("nothing.here=1", "no experiment of this run .* has that setting"),
        ("retention.nope=1", "retention: unknown setting\\(s\\) nope"),
        ("departure.keep_share=0.5", "departure is not an experiment of this run"),
        ("ppo.learning_rate=fast", "ppo.learning_rate: expected float"),
        ("preset=paper", "give --preset instead"),
    ],
)
def test_a_wrong_setting_is_named_before_anything_is_created(setting, said, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["reproduce", "paper", "--set", setting, "--out", str(out), "--quiet"])
    assert code == 2
    error = capsys.readouterr().err
    assert __import__("re").search(said, error), error
    assert not out.exists()
    with pytest.raises(ValueError):
        SuiteConfig(settings=(setting,), experiments=PAPER)


def test_a_toml_file_sets_every_experiment_and_tables_one(tmp_path, monkeypatch):
    from internalize import cli

    file = tmp_path / "mine.toml"
    file.write_text(
        "isr_threshold = 0.25\nppo.ent_coef = 0.02\n"
        "[retention]\nisr.epochs = 3\nschedule.kind = 'fading'\n"
        "[scaling]\nsample_counts = [4096, 8192]\n"
    )
    texts = cli._suite_file_settings(str(file))
    assert texts == [
        "isr_threshold=0.25",
        "ppo.ent_coef=0.02",
        "retention.isr.epochs=3",
        "retention.schedule.kind=fading",
        "scaling.sample_counts=4096,8192",
    ]
    config = SuiteConfig(settings=tuple(texts), experiments=PAPER)
    retention = config.experiment_config("retention")
    assert (retention.isr.epochs, retention.schedule.kind, retention.ppo.ent_coef) == (
        3,
        "fading",
        0.02,
    )
    assert config.experiment_config("scaling").sample_counts == (4096, 8192)
    with pytest.raises(ValueError, match="takes a TOML file"):
        cli._suite_file_settings(str(tmp_path / "config.json"))


def test_the_settings_are_recorded_and_a_resume_must_give_them_again(tmp_path, capsys):
    """A run's config.json records its settings; the same command with others is refused, and a
    run from before `--set` (no settings recorded) resumes with none."""
    from internalize.experiments.suite import _check_suite_directory

    config = SuiteConfig(settings=("retention.isr.epochs=3",), experiments=("retention",))
    run = tmp_path / "run"
    run.mkdir()
    saved = json.loads(json.dumps(config.resolved()))
    (run / "config.json").write_text(json.dumps(saved))
    assert _check_suite_directory(run, config) is True
    other = SuiteConfig(settings=("retention.isr.epochs=4",), experiments=("retention",))
    with pytest.raises(ValueError, match="was started with other settings"):
        _check_suite_directory(run, other)
    del saved["settings"]
    (run / "config.json").write_text(json.dumps(saved))
    plain = SuiteConfig(experiments=("retention",))
    assert _check_suite_directory(run, plain) is True
