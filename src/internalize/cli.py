"""The `internalize` command line."""

import argparse
import json
import sys
import time
from collections.abc import Sequence

from internalize import __version__
from internalize.envs.layouts import NAMED_LAYOUTS


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


def build_parser() -> argparse.ArgumentParser:
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
    retention = experiments.add_parser(
        "retention",
        help="experiment A: retention vs unlearning when the caregiver leaves",
        description=(
            "Experiment A (SPEC §5 A): per seed, socialize with the caregiver present, train the "
            "ISR on that data, then continue under oracle, none and isr. Writes config.json, "
            "versions.json, metrics.csv, retention.png and results.json (last) into --out."
        ),
    )
    _experiment_options(retention, "retention", 120_000)
    prosocial = experiments.add_parser(
        "prosocial",
        help="experiment E: does the learner go on helping the partner in the boulder world",
        description=(
            "Experiment E (SPEC §5 E): in the boulder world, per seed, socialize with the "
            "caregiver present (it rewards the learner when the partner reaches its goal), train "
            "the two-agent ISR on that data, then continue under oracle, none and isr. Writes "
            "config.json, versions.json, metrics.csv, prosocial.png, episode.gif, episode.png "
            "and results.json (last) into --out."
        ),
    )
    _experiment_options(prosocial, "prosocial", 240_000)
    return parser


def _experiment_options(parser: argparse.ArgumentParser, name: str, steps: int) -> None:
    """The options every `reproduce` experiment shares."""
    parser.add_argument(
        "--preset", choices=("fast", "paper"), default="fast", help="settings (default fast)"
    )
    parser.add_argument("--seeds", type=POSITIVE, default=10, help="seeds (default 10)")
    parser.add_argument(
        "--first-seed", type=NON_NEGATIVE, default=1234, help="first seed (default 1234)"
    )
    parser.add_argument("--socialize-steps", type=POSITIVE, default=steps, help=f"default {steps}")
    parser.add_argument("--autonomy-steps", type=POSITIVE, default=steps, help=f"default {steps}")
    parser.add_argument(
        "--out", default=None, help=f"new run directory (default runs/{name}-DATE-TIME)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _prosocial(args: argparse.Namespace) -> dict:
    from internalize.experiments.common import default_run_path
    from internalize.experiments.prosocial import ProsocialConfig, run_prosocial

    config = ProsocialConfig(
        preset=args.preset,
        seeds=args.seeds,
        first_seed=args.first_seed,
        socialize_steps=args.socialize_steps,
        autonomy_steps=args.autonomy_steps,
    )
    out = args.out or default_run_path("prosocial")
    results = run_prosocial(config, out, progress=not args.quiet)
    return {
        "experiment": "prosocial",
        "run_dir": str(out),
        "summary": results["summary"],
        "helps_ratio_to_oracle": results["helps_ratio_to_oracle"],
        "isr_test_mse": results["isr_model"]["test_mse"],
        "seconds": results["timings"]["total_s"],
    }


def _retention(args: argparse.Namespace) -> dict:
    from internalize.experiments.common import default_run_path
    from internalize.experiments.retention import RetentionConfig, run_retention

    config = RetentionConfig(
        preset=args.preset,
        seeds=args.seeds,
        first_seed=args.first_seed,
        socialize_steps=args.socialize_steps,
        autonomy_steps=args.autonomy_steps,
    )
    out = args.out or default_run_path("retention")
    results = run_retention(config, out, progress=not args.quiet)
    return {
        "experiment": "retention",
        "run_dir": str(out),
        "summary": results["summary"],
        "goals_ratio_to_oracle": results["goals_ratio_to_oracle"],
        "isr_test_mse": results["isr_model"]["test_mse"],
        "seconds": results["timings"]["total_s"],
    }


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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "rollout":
            print(json.dumps(_rollout(args), indent=2))
        elif args.command == "reproduce":
            run = {"retention": _retention, "prosocial": _prosocial}[args.experiment]
            print(json.dumps(run(args), indent=2))
    except ValueError as error:
        print(f"internalize: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
