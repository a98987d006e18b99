"""The `internalize` command line."""

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence

from internalize import __version__, compile_cache, numerics
from internalize.envs.layouts import NAMED_LAYOUTS
from internalize.experiments.profiles import PROFILE_NAMES


def _int_at_least(minimum: int):
    """An argparse type: an integer no smaller than `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value

    return parse


POSITIVE, NON_NEGATIVE = _int_at_least(1), _int_at_least(0)


def _chosen_experiment(argv: Sequence[str], commands=("reproduce",)) -> str | None:
    """The experiment `argv` names after one of `commands` (None: another command, or none
    named)."""
    words = [word for word in argv if not word.startswith("-")]
    return words[1] if len(words) > 1 and words[0] in commands else None


def _broken_experiment(argv: Sequence[str]) -> str | None:
    """Why the installed experiment that `argv` runs or sweeps cannot be loaded, if it cannot
    (`registry.BROKEN`); None otherwise."""
    from internalize.experiments.registry import BROKEN

    return BROKEN.get(_chosen_experiment(argv, ("reproduce", "sweep")))


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command line. With `argv`, only the experiment it names gets its options and the
    help of its settings (which import it, and JAX); the others are listed by name and help
    line, so that `internalize --help` starts at once. Without, every experiment gets them."""
    parser = argparse.ArgumentParser(
        prog="internalize",
        description="Value internalization from social reward in JAX.",
    )
    parser.add_argument("--version", action="version", version=f"internalize {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    rollout = commands.add_parser(
        "rollout",
        help="random-policy rollouts of the goals gridworld: goals, returns and speed",
        description=(
            "Step many goals gridworlds at once with uniformly random actions and print, as JSON, "
            "the goals reached and the true return (R_e + R_s) per episode and the steps per "
            "second (of stepping without observations, which a random policy does not read; "
            "benchmarks/env_speed.py times stepping with them). The random policy is the floor "
            "any learner must beat."
        ),
    )
    walls = rollout.add_mutually_exclusive_group()
    walls.add_argument(
        "--n-blocks",
        type=NON_NEGATIVE,
        default=None,
        help="random wall blocks per layout (default 3)",
    )
    walls.add_argument(
        "--layout",
        choices=sorted(NAMED_LAYOUTS),
        default=None,
        help="a fixed hand-picked wall layout instead of random blocks",
    )
    rollout.add_argument("--envs", type=POSITIVE, default=1024, help="parallel environments")
    rollout.add_argument("--steps", type=POSITIVE, default=2000, help="steps per environment")
    rollout.add_argument("--seed", type=NON_NEGATIVE, default=0, help="random seed")
    rollout.add_argument(
        "--render", metavar="PNG", default=None, help="also save a picture of a layout"
    )

    reproduce = commands.add_parser(
        "reproduce",
        help="run one of the paper's experiments into a run directory",
        description="Run one of the paper's experiments (SPEC §5) into a run directory.",
    )
    experiments = reproduce.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    from internalize.experiments.registry import REGISTRY

    chosen = None if argv is None else _chosen_experiment(argv)
    for name, record in REGISTRY.items():
        if argv is None or name == chosen:
            _experiment_parser(experiments, name, record)
        else:
            experiments.add_parser(name, help=record.help, description=record.description)
    paper = [name for name, record in REGISTRY.items() if record.in_all and record.paper]
    every = [name for name, record in REGISTRY.items() if record.in_all]
    _suite_parser(
        experiments,
        "paper",
        paper,
        "the paper's experiments into one run directory (resumable; the main job)",
    )
    _suite_parser(
        experiments,
        "all",
        every,
        "the paper's experiments and those beyond it into one run directory (resumable)",
    )

    sweep = commands.add_parser(
        "sweep",
        help="one experiment over a grid of settings, each cell a run (resumable; Ray)",
        description=(
            "Run one experiment for every cell of a grid of settings, each cell an ordinary run "
            "directory under --out/cells, then write table.csv (each cell's settings and every "
            "per-seed metric: mean, standard error, 95%% bootstrap interval), one figure per "
            "swept setting and sweep.json (last). Every cell is checked before any runs. Run "
            "the same command again to resume: finished cells are kept, interrupted ones run "
            "again; another grid is refused."
        ),
    )
    sweep.add_argument("experiment", choices=list(REGISTRY), metavar="EXPERIMENT")
    sweep.add_argument(
        "--grid",
        metavar="KEY=V1,V2,...",
        action="append",
        required=True,
        help="a setting and its values (any key of --set); repeatable: cells are the product",
    )
    _run_options(
        sweep, "sweep directory, new or to resume (default runs/sweep-NAME-DATE-TIME)", unset=True
    )
    _settings_options(sweep)
    _backend_options(sweep, "cell")

    export = commands.add_parser(
        "export",
        help="a run's curves as TensorBoard event files or W&B offline runs",
        description=(
            "Write the curves of every metrics.csv in a run directory (one experiment, an `all` "
            "run or a sweep) as TensorBoard event files (no TensorBoard needed to write them) "
            "and/or W&B runs in offline mode (needs the wandb package; `wandb sync` uploads "
            "them later). One run per seed, phase, condition and task."
        ),
    )
    export.add_argument("run_dir", metavar="RUN_DIR", help="the run directory")
    export.add_argument("--tensorboard", metavar="DIR", help="write event files under DIR")
    export.add_argument("--wandb", metavar="DIR", help="write W&B offline runs under DIR")
    export.add_argument("--project", default="internalize", help="the W&B project")

    report = commands.add_parser(
        "report",
        help="one self-contained HTML report of a run directory",
        description=(
            "Write one self-contained HTML file (figures embedded, no network) of a run "
            "directory: one experiment or an `all` run. It shows ours beside the published "
            "numbers, every figure, summary and test, the config, versions and timings."
        ),
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="the run directory")
    report.add_argument(
        "--out", metavar="FILE", default=None, help="output file (default RUN_DIR/report.html)"
    )

    render = commands.add_parser(
        "render",
        help="GIFs of a run's saved policies playing the same episodes side by side",
        description=(
            "Play episodes with the policies saved in a run directory (one experiment or an "
            "`all` run) and write one GIF per experiment, the policies side by side on the same "
            "layouts: retention and prosocial socialized | none | isr | oracle, hacking "
            "socialized | isr_partial | isr_full, ood and layouts (one GIF per layout) "
            "socialized | frozen | oracle | isr. Prints the files written, as JSON."
        ),
    )
    render.add_argument("run_dir", metavar="RUN_DIR", help="the run directory")
    render.add_argument(
        "--seed-index",
        type=NON_NEGATIVE,
        default=0,
        help="which of the run's seeds (default 0, the first)",
    )
    render.add_argument("--episodes", type=POSITIVE, default=2, help="episodes (default 2)")
    render.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="output folder (default: render/ in each experiment's directory)",
    )
    _teach_parser(commands)
    return parser


TEACH_WORLDS = ("goals", "boulder")
"""The worlds a person can teach in (the keys of `teach.worlds.WORLDS`; named here so that the
command line starts without JAX)."""


def _teach_parser(commands) -> None:
    teach = commands.add_parser(
        "teach",
        help="a person as the caregiver: teach a learner your values in the browser, then leave",
        description=(
            "Serve a page (on 127.0.0.1 unless --host says otherwise) where you watch a learner "
            "act and approve or disapprove of what it does; an ISR fitted to your labels trains "
            "it in many hidden environments, and goes on alone once you leave. Prints the URL "
            "with the session's token. Every label is in the session directory's append-only "
            "log: --resume DIR goes on with a session, --replay DIR retrains its learner from "
            "the log (a run directory that report and render read)."
        ),
    )
    teach.add_argument("--env", choices=TEACH_WORLDS, default="goals", help="default goals")
    teach.add_argument("--preset", choices=PRESET_NAMES, default="fast", help="default fast")
    teach.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (this machine only)")
    teach.add_argument(
        "--port", type=NON_NEGATIVE, default=8765, help="default 8765; 0: any free port"
    )
    teach.add_argument(
        "--out",
        default=None,
        help="new session directory (default runs/teach-DATE-TIME); "
        "with --replay: the replay's run directory (default DIR/replay)",
    )
    mode = teach.add_mutually_exclusive_group()
    mode.add_argument("--resume", metavar="DIR", default=None, help="go on with a session")
    mode.add_argument(
        "--replay", metavar="DIR", default=None, help="retrain a session's learner from its log"
    )
    teach.add_argument(
        "--seeds", type=POSITIVE, default=1, help="with --replay: learners retrained (default 1)"
    )
    teach.add_argument(
        "--first-seed",
        type=NON_NEGATIVE,
        default=None,
        help="with --replay: the first seed (default the session's own)",
    )
    teach.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        dest="assignments",
        help="a session setting (internalize.teach.session.TeachConfig), e.g. --set credit_steps=3",
    )
    teach.add_argument("--quiet", action="store_true", help="no progress bar (--replay)")
    teach.add_argument(
        "--compile-cache",
        metavar="DIR|off",
        default=None,
        help="where compiled programs are kept (as for reproduce)",
    )


def _teach(args: argparse.Namespace) -> dict:
    from internalize.teach import command

    if args.replay is not None:
        return command.replay(args.replay, args.out, args.seeds, args.first_seed, not args.quiet)
    if args.resume is not None:
        return command.resume(args.resume, args.host, args.port)
    return command.start(args.out, args.env, args.preset, args.assignments, args.host, args.port)


PRESET_NAMES = ("fast", "fast-cnn", "paper")
"""The presets every experiment has (the keys of `learners.ppo.PRESETS`; named here so that the
command line starts without JAX)."""
PROFILE_HELP = (
    "settings laid over the preset and under yours (--config, options, --set): original turns "
    "on every SPEC §7 difference that is a setting, the authors' code (docs/fidelity.md); "
    "default none"
)


def _suite_parser(experiments, suite: str, names: list[str], help: str) -> None:
    """`reproduce paper` and `reproduce all`: the experiments `names`, each with its defaults,
    into one run directory."""
    sub = experiments.add_parser(
        suite,
        help=help,
        description=(
            f"Run {', '.join(names)} with their default settings into one run directory, one "
            "subdirectory each, in worker processes in the deterministic mode (each on one CPU, "
            "XLA's kernels capped at AVX2; see `reproduce NAME --deterministic`). Run the same "
            "command again on the same --out to resume: finished experiments are kept, an "
            "interrupted one is run again. Ctrl-C stops at once and keeps what finished."
        ),
    )
    _run_options(
        sub, f"run directory, new or to resume (default runs/{suite}-DATE-TIME)", quick=True
    )
    sub.add_argument(
        "--jobs",
        type=int,
        choices=(1, 2),
        default=2,
        help="worker processes, each on a CPU of its own: 2 (default) runs two groups of "
        "experiments at a time, the costliest first",
    )
    _backend_options(sub, "experiment")
    _settings_options(
        sub,
        "a TOML file of settings: top-level keys for every experiment that has them, a table "
        "named after an experiment ([retention]) for it alone",
        "a setting of every experiment that has it (--set ppo.learning_rate=3e-4), or of one "
        "(--set retention.ppo.learning_rate=3e-4); repeatable; after --quick's",
    )
    sub.add_argument(
        "--only",
        metavar="NAME,NAME",
        type=_names(names),
        default=None,
        help="only these experiments of the list above (comma-separated), each with its "
        "default settings; default every one",
    )
    sub.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke run of the whole pipeline: {QUICK_SEEDS} seeds unless --seeds says "
        "otherwise, a few rollouts per phase (minutes; its numbers are not findings)",
    )


def _suite_file_settings(path: str | None) -> list[str]:
    """The settings of a `reproduce paper|all --config` TOML file as `KEY=VALUE` texts: top-level
    keys for every experiment that has them, a table named after an experiment for it alone
    (`[retention]` then `ppo.learning_rate = 3e-4`)."""
    if path is None:
        return []
    from internalize import config as settings_module

    if str(path).endswith(".json"):
        raise ValueError(
            f"--config {path}: reproduce paper|all takes a TOML file of settings; to resume a "
            "run, give the same command with its --out"
        )
    data = settings_module.load(path, dict)

    def texts(tree: dict, prefix: str = "") -> list[str]:
        found = []
        for key, value in tree.items():
            if isinstance(value, dict):
                found += texts(value, f"{prefix}{key}.")
            elif isinstance(value, (list, tuple)):
                found.append(f"{prefix}{key}={','.join(str(v) for v in value)}")
            else:
                found.append(
                    f"{prefix}{key}={str(value).lower() if isinstance(value, bool) else value}"
                )
        return found

    return texts(data)


def _run_options(
    parser: argparse.ArgumentParser, out_help: str, unset: bool = False, quick: bool = False
) -> None:
    """--preset, --profile, --seeds, --first-seed, --out, --quiet and --compile-cache, which
    every run command takes; with `unset`, an option not given is absent from the arguments
    (the config gives it); with `quick`, --seeds not given is None (10, or `QUICK_SEEDS`
    with --quick)."""
    default = (lambda value: argparse.SUPPRESS) if unset else (lambda value: value)
    parser.add_argument(
        "--preset", choices=PRESET_NAMES, default=default("fast"), help="default fast"
    )
    parser.add_argument(
        "--profile", choices=PROFILE_NAMES, default=default(None), help=PROFILE_HELP
    )
    parser.add_argument(
        "--seeds",
        type=POSITIVE,
        default=None if quick else default(10),
        help=f"default 10 ({QUICK_SEEDS} with --quick)" if quick else "default 10",
    )
    parser.add_argument(
        "--first-seed", type=NON_NEGATIVE, default=default(1234), help="default 1234"
    )
    parser.add_argument("--out", default=None, help=out_help)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--device",
        choices=("cpu", "gpu"),
        default=None,
        help="where JAX runs (default: a GPU where JAX's CUDA plugin and one are present, else "
        "the CPU; JAX_PLATFORMS where set); recorded in each run's versions.json",
    )
    parser.add_argument(
        "--compile-cache",
        metavar="DIR|off",
        default=None,
        help="where compiled programs are kept for the next run (default "
        "$INTERNALIZE_COMPILE_CACHE, else ~/.cache/internalize/jax); off: compile afresh",
    )


def _backend_options(parser: argparse.ArgumentParser, unit: str) -> None:
    """--backend and --address."""
    parser.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help=f"local (default): on this machine; ray: each {unit} a task on a Ray cluster "
        "(pip install 'internalize[ray]')",
    )
    parser.add_argument(
        "--address",
        default=None,
        help="with --backend ray: the cluster (auto, HOST:PORT, ray://HOST:PORT); default: "
        "a local one, started for the command",
    )


def _settings_options(
    parser: argparse.ArgumentParser,
    config_help: str = "settings from a TOML file, or a run's config.json to rerun it exactly",
    set_help: str = "any setting (see `reproduce NAME --help`), e.g. --set "
    "ppo.learning_rate=3e-4; repeatable; applied after --config and the options",
) -> None:
    """--config and --set."""
    parser.add_argument("--config", metavar="FILE", default=None, help=config_help)
    parser.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        dest="assignments",
        help=set_help,
    )


QUICK_SEEDS = 2
"""Seeds of `reproduce paper|all --quick` unless --seeds says otherwise."""

SHORTCUTS = ("preset", "profile", "seeds", "first_seed", "isr_threshold")
"""Settings with an option of their own (besides every `*_steps` setting)."""


def _experiment_parser(experiments, name: str, record) -> None:
    """`reproduce NAME`: its options, and every setting of its config in the help."""
    from internalize.config import help_text
    from internalize.experiments.configs import make_config

    defaults = make_config(name)
    sub = experiments.add_parser(
        name,
        help=record.help,
        description=record.description,
        epilog="settings (--set KEY=VALUE, or keys of a --config TOML file):\n"
        + help_text(defaults),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _run_options(sub, f"new run directory (default runs/{name}-DATE-TIME)", unset=True)
    _settings_options(sub)
    sub.add_argument(
        "--quick",
        action="store_true",
        help="refused here, with what to run instead: a smoke run is `reproduce all --only "
        "NAME --quick` (its report says it is not findings)",
    )
    sub.add_argument(
        "--deterministic",
        action="store_true",
        help="run on one CPU with XLA's kernels capped at AVX2, as `reproduce all` does: "
        "the same numbers whatever CPUs this machine has (see README, Numbers and machines)",
    )
    for option in (field for field in vars(defaults) if field.endswith("_steps")):
        sub.add_argument(
            f"--{option.replace('_', '-')}",
            type=POSITIVE,
            default=argparse.SUPPRESS,
            help=f"default {getattr(defaults, option)}",
        )
    if hasattr(defaults, "isr_threshold"):
        sub.add_argument(
            "--isr-threshold",
            type=_threshold,
            default=argparse.SUPPRESS,
            help=f"the ISR pays only above this prediction (default {defaults.isr_threshold}); "
            "'none' pays every prediction",
        )


def _quick_elsewhere(name: str) -> str:
    """Why `reproduce NAME --quick` is refused, and what to run instead."""
    from internalize.experiments.registry import REGISTRY

    shorter = "or give shorter phases (--socialize-steps N and the other *-steps options)"
    if REGISTRY[name].in_all:
        return (
            f"--quick is a smoke run of reproduce paper|all, marked in its report as not "
            f"findings: run `internalize reproduce all --only {name} --quick`, {shorter}"
        )
    return f"--quick is a smoke run of reproduce paper|all, which {name} is not part of: {shorter}"


def _names(known: list[str]):
    """An argparse type: comma-separated experiments of `known`, each once."""

    def parse(text: str) -> tuple[str, ...]:
        names = tuple(name.strip() for name in text.split(","))
        unknown = [name for name in names if name not in known]
        if unknown or len(set(names)) < len(names):
            raise argparse.ArgumentTypeError(
                f"expected experiments of this command, each once, from {known}; got {text!r}"
            )
        return names

    return parse


def _threshold(text: str) -> float | None:
    """An argparse type: a finite float, or 'none'."""
    if text.lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a number or 'none', got {text!r}")
    return value


SHOWN = (
    "summary",
    "goals_ratio_to_oracle",
    "return_ratio_to_oracle",
    "helps_ratio_to_oracle",
    "tests",
    "pooled",
    "findings",
)
"""Keys of results.json that the command prints."""


def _reproduce(args: argparse.Namespace) -> dict:
    from internalize.experiments.common import (
        check_new_run_directory,
        default_run_path,
        hold_run_directory,
    )

    out = args.out or default_run_path(args.experiment)
    if args.experiment in ("paper", "all"):
        from internalize.experiments.suite import PAPER, SuiteConfig, run_all

        settings = {"preset": args.preset, "first_seed": args.first_seed, "profile": args.profile}
        seeds = args.seeds or (QUICK_SEEDS if args.quick else None)
        if seeds is not None:  # else the config's default
            settings["seeds"] = seeds
        if args.only is not None:
            settings["experiments"] = args.only
        elif args.experiment == "paper":
            settings["experiments"] = PAPER
        texts = (*_suite_file_settings(args.config), *args.assignments)
        config = SuiteConfig(**settings, quick=args.quick, jobs=args.jobs, settings=texts)
        if args.backend == "ray":  # before JAX starts its threads here: Ray forks its services
            from internalize.backends.ray import connect

            connect(args.address)
        try:
            results = run_all(config, out, not args.quiet, args.backend, args.address)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(f"interrupted: run the same command to resume {out}") from None
        return {
            "experiment": args.experiment,
            "run_dir": str(out),
            "status": results["status"],
            "timings": results["timings"],
            "peak_rss_gb": results["peak_rss_gb"],
            "report": results.get("report"),
        }
    if args.quick:
        raise ValueError(_quick_elsewhere(args.experiment))
    if args.deterministic:
        from internalize.numerics import make_deterministic

        make_deterministic()
    from internalize.experiments.configs import resolve_config
    from internalize.experiments.runner import run_experiment

    options = {
        name: value
        for name, value in vars(args).items()
        if name in SHORTCUTS or name.endswith("_steps")
    }
    config = resolve_config(args.experiment, args.config, options, args.assignments)
    with hold_run_directory(out, check_new_run_directory):
        try:
            results = run_experiment(args.experiment, config, out, not args.quiet)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(
                f"interrupted: nothing was marked finished in {out}; remove it or run again "
                "with a new --out"
            ) from None
    shown = {"experiment": args.experiment, "run_dir": str(out)}
    shown.update({key: results[key] for key in SHOWN if key in results})
    shown["seconds"] = results["timings"]["total_s"]
    return shown


def _sweep(args: argparse.Namespace) -> dict:
    from internalize.experiments.common import default_run_path, hold_run_directory
    from internalize.sweep import make_cells, parse_grid, run_sweep

    grid = parse_grid(args.grid)
    if args.backend == "ray":  # before JAX starts its threads here: Ray forks its services
        from internalize.backends.ray import connect

        connect(args.address)
    options = {name: value for name, value in vars(args).items() if name in SHORTCUTS}
    cells = make_cells(args.experiment, grid, args.config, options, args.assignments)
    out = args.out or default_run_path(f"sweep-{args.experiment}")
    with hold_run_directory(out):
        try:
            summary = run_sweep(
                args.experiment, grid, cells, out, args.backend, args.address, not args.quiet
            )
        except KeyboardInterrupt:
            raise KeyboardInterrupt(f"interrupted: run the same command to resume {out}") from None
    shown = {"experiment": args.experiment, "sweep_dir": str(out), "status": summary["status"]}
    if "figures" in summary:
        shown.update(table=f"{out}/{summary['table']}", figures=summary["figures"])
    shown["seconds"] = summary["wall_s"]
    return shown


def _export(args: argparse.Namespace) -> dict:
    from internalize import export

    if not (args.tensorboard or args.wandb):
        raise ValueError("export needs --tensorboard DIR and/or --wandb DIR")
    shown: dict = {"run_dir": args.run_dir}
    if args.tensorboard:
        files = export.to_tensorboard(args.run_dir, args.tensorboard)
        shown["tensorboard"] = {"logdir": args.tensorboard, "event_files": len(files)}
    if args.wandb:
        folders = export.to_wandb(args.run_dir, args.wandb, args.project)
        shown["wandb"] = {"offline_runs": [str(folder) for folder in folders]}
    return shown


def _rollout(args: argparse.Namespace) -> dict:
    import jax

    from internalize.envs.goals import GoalsEnv
    from internalize.envs.rollout import make_random_rollout

    env = GoalsEnv()
    params = env.make_params(n_blocks=args.n_blocks, layout=args.layout)
    rollout = make_random_rollout(env, params, args.envs, args.steps)
    key = jax.random.key(args.seed)
    started = time.perf_counter()
    compiled = rollout.lower(key).compile()
    compile_s = time.perf_counter() - started
    started = time.perf_counter()
    totals = jax.block_until_ready(compiled(key))
    run_s = time.perf_counter() - started
    steps = args.envs * args.steps
    episodes = steps / env.default_max_steps
    summary = {
        "task": "goals",
        "walls": args.layout or f"{int(params.n_blocks)} random blocks",
        "policy": "uniform random",
        "envs": args.envs,
        "steps": steps,
        "goals_per_episode": float(totals.goals) / episodes,
        "return_per_episode": float(totals.env_reward + totals.social_reward) / episodes,
        "steps_per_second": steps / run_s,
        "compile_seconds": compile_s,
    }
    if args.render:
        from PIL import Image

        from internalize.envs.render import render_goals

        Image.fromarray(render_goals(env.reset(key, params))).save(args.render)
        summary["render"] = args.render
    return summary


def _report_failures(status: dict[str, str]) -> int:
    """Print a line on stderr for each experiment of `status` (name -> status) that did not
    finish; returns the exit status: 1 if any did not, else 0."""
    failed = {name: text for name, text in status.items() if not text.startswith("finished")}
    for name, text in failed.items():
        print(f"internalize: {name} {text}", file=sys.stderr)
    return 1 if failed else 0


INTERRUPTED = {
    "rollout": "interrupted: nothing was written; run the command again",
    "reproduce": "interrupted before the run began; run the command again",
    "report": "interrupted: no report was written; run the command again",
    "render": "interrupted: the GIFs written are whole, others are missing; run it again",
    "sweep": "interrupted before the sweep began; run the command again",
    "export": "interrupted: what was written is whole, the rest is missing; run it again",
    "teach": "stopped: every acknowledged label is in the session's log; --resume DIR goes on",
}
"""What to do after Ctrl-C on a command (`reproduce` says it with its run directory)."""


def _os_error(error: OSError) -> str:
    """An OSError in one line, naming the file it concerns where it has one."""
    return f"{error.strerror}: {error.filename}" if error.filename else str(error)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    broken = _broken_experiment(argv)
    if broken is not None:
        print(f"internalize: error: {broken}", file=sys.stderr)
        return 2
    args = build_parser(argv).parse_args(argv)
    try:
        numerics.choose_device(getattr(args, "device", None))
        compile_cache.configure(getattr(args, "compile_cache", None))
        if args.command == "rollout":
            print(json.dumps(_rollout(args), indent=2))
        elif args.command == "reproduce":
            shown = _reproduce(args)
            print(json.dumps(shown, indent=2))
            return _report_failures(shown.get("status", {}))
        elif args.command == "sweep":
            shown = _sweep(args)
            print(json.dumps(shown, indent=2))
            return _report_failures(shown["status"])
        elif args.command == "export":
            print(json.dumps(_export(args), indent=2))
        elif args.command == "report":
            from internalize.report import write_report

            print(json.dumps({"report": str(write_report(args.run_dir, args.out))}, indent=2))
        elif args.command == "teach":
            print(json.dumps(_teach(args), indent=2))
        elif args.command == "render":
            from internalize.render import render_run

            print(
                json.dumps(
                    render_run(args.run_dir, args.seed_index, args.episodes, args.out), indent=2
                )
            )
    except ValueError as error:
        print(f"internalize: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a full disk, a directory that refuses writes
        print(f"internalize: error: {_os_error(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        print(f"internalize: {str(interrupt) or INTERRUPTED[args.command]}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
