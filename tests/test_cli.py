import json
import subprocess
import sys

import pytest

from internalize.cli import EXPERIMENTS, build_parser, main
from internalize.experiments.suite import SuiteConfig, make_config


def test_rollout_reports_the_random_policy(capsys, tmp_path):
    picture = tmp_path / "layout.png"
    assert main(["rollout", "--envs", "64", "--steps", "400", "--render", str(picture)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 64 * 400
    # A random policy reaches a goal in about one episode in six (0.16 on 3 blocks).
    assert 0.1 < summary["goals_per_episode"] < 0.25
    assert summary["steps_per_second"] > 0
    assert picture.stat().st_size > 0


def test_rollout_on_a_named_layout(capsys):
    assert main(["rollout", "--layout", "four_rooms", "--envs", "8", "--steps", "100"]) == 0
    assert json.loads(capsys.readouterr().out)["walls"] == "four_rooms"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rollout", "--steps", "-3"], "expected an integer >= 1"),
        (["rollout", "--envs", "0"], "expected an integer >= 1"),
        (["rollout", "--layout", "spiral"], "invalid choice"),
        (["rollout", "--n-blocks", "3", "--layout", "plus"], "not allowed with"),
        (["rollout", "--bogus"], "unrecognized arguments"),
        (["fly"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_with_a_message(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_impossible_values_exit_with_a_message(capsys):
    assert main(["rollout", "--n-blocks", "24"]) == 2
    assert "n_blocks=24 is impossible" in capsys.readouterr().err


def test_console_script_runs():
    result = subprocess.run(
        [sys.executable, "-m", "internalize.cli", "rollout", "--envs", "4", "--steps", "50"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout)["envs"] == 4


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_reproduce_defaults_are_the_experiment_defaults(name):
    """`reproduce NAME` with no options and `reproduce all` run an experiment alike: every
    default the CLI sets is the default of the experiment's config."""
    args = build_parser().parse_args(["reproduce", name])
    settings = {"preset": args.preset, "seeds": args.seeds, "first_seed": args.first_seed}
    settings.update({option: getattr(args, option) for option in EXPERIMENTS[name]["steps"]})
    if "isr_threshold" in EXPERIMENTS[name]:
        settings["isr_threshold"] = args.isr_threshold
    assert make_config(name, **settings) == SuiteConfig().experiment_config(name)
