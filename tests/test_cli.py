import errno
import json
import os
import subprocess
import sys

import pytest

from internalize.cli import INTERRUPTED, SHORTCUTS, build_parser, main
from internalize.experiments.common import LOCK_FILE
from internalize.experiments.configs import make_config, resolve_config
from internalize.experiments.registry import REGISTRY
from internalize.experiments.suite import SuiteConfig


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


@pytest.mark.parametrize(
    ("name", "advice"),
    [
        ("retention", "internalize reproduce all --only retention --quick"),
        ("departure-boulder", "which departure-boulder is not part of"),
    ],
)
def test_quick_for_one_experiment_is_refused_with_what_to_run(tmp_path, capsys, name, advice):
    out = tmp_path / "run"
    assert main(["reproduce", name, "--quick", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("internalize: error: --quick is a smoke run") and advice in error
    assert not out.exists()


def test_help_lists_every_experiment_without_importing_them():
    """`internalize --help` and `reproduce --help` build no experiment's settings: neither JAX
    nor an experiment module is imported (they start at once); `reproduce NAME` gets its own."""
    script = (
        "import sys\n"
        "from internalize.cli import build_parser\n"
        "from internalize.experiments.registry import REGISTRY\n"
        "for argv in ([], ['reproduce'], ['reproduce', '--help'], ['sweep', 'retention']):\n"
        "    build_parser(argv)\n"
        "heavy = [m for m in ('jax', 'internalize.experiments.retention') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr[-2000:]
    argv = ["reproduce", "ood", "--quiet", "--set", "test_blocks=5"]
    args = build_parser(argv).parse_args(argv)
    assert args.experiment == "ood" and args.assignments == ["test_blocks=5"] and args.quiet


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


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_reproduce_defaults_are_the_experiment_defaults(name):
    """`reproduce NAME` with no options and `reproduce all` run an experiment alike: the
    command line adds nothing to the experiment's config (defaults come from it alone)."""
    args = build_parser().parse_args(["reproduce", name])
    options = {key: value for key, value in vars(args).items() if key in SHORTCUTS}
    options.update({key: value for key, value in vars(args).items() if key.endswith("_steps")})
    assert options == {}
    config = resolve_config(name, args.config, options, args.assignments)
    assert config == make_config(name)
    if REGISTRY[name].in_all:  # `reproduce all` sets the seeds of only the experiments it runs
        assert config == SuiteConfig().experiment_config(name)


@pytest.mark.parametrize("experiment", ["retention", "all"])
@pytest.mark.parametrize("under", ["a_file/run", "/proc/no/run"])
def test_an_out_that_cannot_be_created_exits_2_naming_it(tmp_path, capsys, experiment, under):
    (tmp_path / "a_file").write_text("not a directory")
    out = tmp_path / under
    assert main(["reproduce", experiment, "--out", str(out), "--seeds", "1", "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"internalize: error: cannot create the run directory {out}: ")
    assert error.count("\n") == 1


def test_a_full_disk_exits_2_naming_the_file_and_leaves_nothing_that_looks_finished(
    tmp_path, capsys, monkeypatch
):
    def full(_descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)  # every atomic write ends with one
    for experiment in ("scaling", "all"):
        out = tmp_path / experiment
        assert main(["reproduce", experiment, "--out", str(out), "--seeds", "1", "--quiet"]) == 2
        assert capsys.readouterr().err == (
            f"internalize: error: No space left on device: {out / 'config.json'}\n"
        )
        assert sorted(path.name for path in out.iterdir()) == [LOCK_FILE]
    (tmp_path / "scaling" / "config.json").write_text('{"experiment": "scaling"}')
    assert main(["report", str(tmp_path / "scaling")]) == 2
    report = tmp_path / "scaling" / "report.html"
    assert capsys.readouterr().err == f"internalize: error: No space left on device: {report}\n"


@pytest.mark.parametrize(
    ("argv", "stopped", "message"),
    [
        (["rollout"], "internalize.cli._rollout", INTERRUPTED["rollout"]),
        (["report", "RUN"], "internalize.report.write_report", INTERRUPTED["report"]),
        (["render", "RUN"], "internalize.render.render_run", INTERRUPTED["render"]),
        (
            ["reproduce", "retention", "--out", "RUN", "--seeds", "1"],
            "internalize.experiments.runner.run_experiment",
            "interrupted: nothing was marked finished in RUN; remove it or run again with a "
            "new --out",
        ),
    ],
)
def test_ctrl_c_says_what_to_do_next(tmp_path, capsys, monkeypatch, argv, stopped, message):
    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(stopped, interrupted)
    run = str(tmp_path / "run")
    assert main([run if arg == "RUN" else arg for arg in argv]) == 130
    assert capsys.readouterr().err == f"internalize: {message.replace('RUN', run)}\n"
