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
    return parser


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
    except ValueError as error:
        print(f"internalize: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
