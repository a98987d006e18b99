"""Environment stepping speed: the JAX goals gridworld against its MiniGrid reference.

Measures, in one process, environment steps per second with uniformly random actions of

* MiniGrid: one `MiniGridGoals` stepped in a Python loop, reset on truncation, the usual way. It
  is timed first and again last, as machines drift; the ratios use the mean of the two.
* JAX: `make_random_rollout` (`GoalsEnv.step_batch`, auto-reset, one `lax.scan`) over each batch
  size, with `num_steps` calibrated so that one run takes about `--seconds`. Compile time is
  measured apart (`.lower(key).compile()`) and left out of the rate.

`make_random_rollout` returns only reward and flag totals, so XLA would be free to drop the
observations, which MiniGrid always builds. The JAX side here makes every step's result depend
on every observation cell (without changing it), so the observations are computed, as they are
when a learner consumes them.

That ratio sets a batch of JAX environments against one MiniGrid environment. With `--vector`,
each batch size is also set against MiniGrid at the same environment count, like for like:
Gymnasium's `SyncVectorEnv` over `num_envs` `MiniGridGoals` (and `AsyncVectorEnv`, one process
per environment, up to `--async-max-envs` environments), random actions for the whole batch each
step, each environment restarted in the step its episode ends (`AutoresetMode.SAME_STEP`, as
`step_batch` restarts ours) and the batch's observations stacked into one array, as a learner
reads them. At each batch size the vector environments are timed just before and just after the
JAX run (machines drift); the ratios use the mean of the two. Async environments are started
with `forkserver`, not `fork`, as this process runs JAX's threads.

Each rate is the best of `--repeats` runs. `goals_per_episode` (goals reached per completed
episode, about 0.16 for a random policy on 3 blocks) checks that both implement the same task.

Output is JSON lines on stdout: a "meta" line (machine and versions), the MiniGrid line, with
`--vector` the vector lines of each batch size, one line per JAX configuration (its ratios to
every MiniGrid baseline), and a "summary" line with the best rate, its batch size, the ratio
and whether the targets (1e6 steps/s, 200x MiniGrid) are met, and with `--vector` the like-for-
like ratio at every batch size. Progress goes to stderr.

    python benchmarks/env_speed.py
    python benchmarks/env_speed.py --vector
"""

import argparse
import functools
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from importlib.metadata import version
from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from internalize.envs.base import Transition
from internalize.envs.goals import GoalsEnv, GoalsParams, GoalsState
from internalize.envs.rollout import make_random_rollout
from internalize.reference.minigrid_goals import MiniGridGoals

TARGET_STEPS_PER_SECOND = 1e6
TARGET_RATIO = 200.0
CALIBRATION_STEPS = 200_000
"""Environment steps (over all environments) of the short run that sets `num_steps`."""
VECTOR_KINDS = ("sync", "async")
"""Gymnasium's vector environments that `--vector` times: `SyncVectorEnv`, `AsyncVectorEnv`."""


@dataclass(frozen=True)
class ObservedGoalsEnv(GoalsEnv):
    """`GoalsEnv` whose `goal_reached` also depends on every observation cell.

    An observation always holds the agent (a non-zero cell), so the flag is unchanged, but XLA
    cannot prove it and has to compute the observations that the rollout otherwise discards.
    """

    def step_batch(self, *args: Any, **kwargs: Any) -> tuple[GoalsState, Transition]:
        states, transitions = super().step_batch(*args, **kwargs)
        seen = transitions.obs.sum(axis=(1, 2, 3), dtype=jnp.int32) > 0
        return states, transitions.replace(goal_reached=transitions.goal_reached & seen)


@dataclass(frozen=True)
class MiniGridRun:
    steps_per_second: float
    goals: int
    episodes: int


@dataclass(frozen=True)
class VectorRun:
    """MiniGrid through one of Gymnasium's vector environments at one environment count."""

    kind: str
    """`sync` or `async` (`VECTOR_KINDS`)."""
    num_envs: int
    num_steps: int
    """Environment steps of one timed run (all environments)."""
    steps_per_second: float
    """The mean of the runs before and after the JAX run of the same count."""
    steps_per_second_start: float
    steps_per_second_end: float
    goals_per_episode: float


@dataclass(frozen=True)
class JaxRun:
    num_envs: int
    num_steps: int
    steps_per_second: float
    compile_seconds: float
    goals_per_episode: float


def time_minigrid(n_blocks: int, steps: int, repeats: int, seed: int) -> MiniGridRun:
    """Best of `repeats` runs of `steps` random steps; goals counted over completed episodes."""
    env = MiniGridGoals(n_blocks=n_blocks)
    rng = np.random.default_rng(seed)
    num_actions = int(env.action_space.n)
    best, goals, episodes = 0.0, 0, 0
    for _ in range(repeats):
        env.reset(seed=int(rng.integers(2**31)))
        episode_goals = 0
        start = time.perf_counter()
        for _ in range(steps):
            _, _, _, truncated, info = env.step(int(rng.integers(num_actions)))
            episode_goals += info["goal_reached"]
            if truncated:
                goals, episodes, episode_goals = goals + episode_goals, episodes + 1, 0
                env.reset()
        best = max(best, steps / (time.perf_counter() - start))
    return MiniGridRun(best, goals, episodes)


def whole_episodes(steps: int, num_envs: int, episode: int) -> int:
    """Steps of a batch of `num_envs` environments nearest `steps` environment steps in all, a
    whole number (at least 1) of `episode`-step episodes."""
    return episode * max(1, round(steps / (num_envs * episode)))


def time_minigrid_vector(
    kind: str, n_blocks: int, num_envs: int, steps: int, repeats: int, seed: int
) -> MiniGridRun:
    """Best of `repeats` runs of `num_envs` `MiniGridGoals` in a Gymnasium vector environment.

    `kind` is `sync` (`SyncVectorEnv`: one process, environments stepped in turn) or `async`
    (`AsyncVectorEnv`: one worker process per environment, observations in shared memory).
    Each run starts every environment afresh and takes about `steps` environment steps in all,
    rounded to whole episodes of the batch, with uniformly random actions; an environment whose
    episode ends restarts in the same step (`AutoresetMode.SAME_STEP`). Goals are counted as the
    steps with a positive reward (a goal's step alone has one: its forward cost is waived).
    Building the vector environment (and its processes) is not timed.
    """
    make = functools.partial(MiniGridGoals, n_blocks=n_blocks)
    vector_steps = whole_episodes(steps, num_envs, make().max_steps)
    same_step = gym.vector.AutoresetMode.SAME_STEP
    if kind == "sync":
        envs = gym.vector.SyncVectorEnv([make] * num_envs, autoreset_mode=same_step)
    elif kind == "async":
        # Not `fork`: this process runs JAX's threads; a forked child may inherit a held lock.
        envs = gym.vector.AsyncVectorEnv(
            [make] * num_envs, context="forkserver", autoreset_mode=same_step
        )
    else:
        raise ValueError(f"unknown vector environment {kind!r}; known: {VECTOR_KINDS}")
    rng = np.random.default_rng(seed)
    num_actions = int(envs.single_action_space.n)
    best, goals, episodes = 0.0, 0, 0
    try:
        for _ in range(repeats):
            envs.reset(seed=int(rng.integers(2**31)))
            start = time.perf_counter()
            for _ in range(vector_steps):
                actions = rng.integers(num_actions, size=num_envs)
                _, rewards, _, truncated, _ = envs.step(actions)
                goals += int((rewards > 0).sum())
                episodes += int(truncated.sum())
            best = max(best, num_envs * vector_steps / (time.perf_counter() - start))
    finally:
        envs.close()
    return MiniGridRun(best, goals, episodes)


def time_jax(
    env: GoalsEnv,
    params: GoalsParams,
    num_envs: int,
    seconds: float,
    repeats: int,
    key: jax.Array,
) -> JaxRun:
    """Calibrate `num_steps` to about `seconds` per run, compile, and keep the best of `repeats`.

    `num_steps` is a multiple of the episode length, so that all episodes (which start together)
    are complete at the end and goals per episode is exact.
    """
    episode = int(params.max_steps)

    def compiled(num_steps: int) -> tuple[Any, float]:
        start = time.perf_counter()
        rollout = make_random_rollout(env, params, num_envs, num_steps).lower(key).compile()
        return rollout, time.perf_counter() - start

    def timed(rollout: Any, key: jax.Array) -> tuple[float, Any]:
        start = time.perf_counter()
        totals = jax.block_until_ready(rollout(key))
        return time.perf_counter() - start, totals

    calibration_steps = episode * max(1, CALIBRATION_STEPS // (num_envs * episode))
    calibration, _ = compiled(calibration_steps)
    timed(calibration, key)  # warm-up
    elapsed, _ = timed(calibration, key)
    rate = num_envs * calibration_steps / elapsed
    num_steps = episode * max(1, round(seconds * rate / (num_envs * episode)))

    rollout, compile_seconds = compiled(num_steps)
    runs = [timed(rollout, jax.random.fold_in(key, i)) for i in range(repeats)]
    elapsed, totals = min(runs, key=lambda r: r[0])
    return JaxRun(
        num_envs=num_envs,
        num_steps=num_steps,
        steps_per_second=num_envs * num_steps / elapsed,
        compile_seconds=compile_seconds,
        goals_per_episode=float(totals.goals / totals.episodes),
    )


def summarise(
    runs: list[JaxRun], minigrid: float, vectors: dict[int, dict[str, VectorRun]]
) -> dict[str, Any]:
    """The best JAX rate against one MiniGrid environment (the targets' ratio) and, where
    `vectors` (by environment count, then kind) has them, every batch size against MiniGrid's
    vector environments at the same count."""
    best = max(runs, key=lambda r: r.steps_per_second)
    ratio = best.steps_per_second / minigrid
    summary = {
        "best_steps_per_second": best.steps_per_second,
        "best_num_envs": best.num_envs,
        "ratio_vs_minigrid": ratio,
        "meets_steps_target": best.steps_per_second >= TARGET_STEPS_PER_SECOND,
        "meets_ratio_target": ratio >= TARGET_RATIO,
    }
    for kind in VECTOR_KINDS:
        like_for_like = {
            str(run.num_envs): run.steps_per_second / vectors[run.num_envs][kind].steps_per_second
            for run in runs
            if kind in vectors.get(run.num_envs, {})
        }
        if like_for_like:
            summary[f"ratio_vs_minigrid_{kind}_same_num_envs"] = like_for_like
    return summary


def meta() -> dict[str, Any]:
    cpu = platform.processor()
    if not cpu and os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else ""
    return {
        "impl": "meta",
        "platform": platform.platform(),
        "processor": cpu,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "minigrid": version("minigrid"),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64, 1024, 4096])
    parser.add_argument(
        "--seconds", type=float, default=2.0, help="approximate wall time of one JAX run"
    )
    parser.add_argument("--minigrid-steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; best kept")
    parser.add_argument("--n-blocks", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--vector",
        action="store_true",
        help="also time MiniGrid through Gymnasium's vector environments at each batch size",
    )
    parser.add_argument(
        "--async-max-envs",
        type=int,
        default=64,
        help="with --vector, AsyncVectorEnv (a process per environment) only up to this many "
        "environments; 0: none",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print(json.dumps(meta()), flush=True)
    key = jax.random.key(args.seed)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def time_vectors(num_envs: int, seed: int) -> dict[str, MiniGridRun]:
        """MiniGrid's vector environments of `num_envs`, by kind (none without `--vector`)."""
        if not args.vector:
            return {}
        kinds = [k for k in VECTOR_KINDS if k == "sync" or num_envs <= args.async_max_envs]
        found = {}
        for kind in kinds:
            log(f"MiniGrid {kind} vector num_envs={num_envs}")
            found[kind] = time_minigrid_vector(
                kind, args.n_blocks, num_envs, args.minigrid_steps, args.repeats, seed
            )
        return found

    log("MiniGrid (start)")
    first = time_minigrid(args.n_blocks, args.minigrid_steps, args.repeats, args.seed)
    runs = []
    vectors: dict[int, dict[str, VectorRun]] = {}
    env = ObservedGoalsEnv()
    params = env.make_params(n_blocks=args.n_blocks)
    episode = int(params.max_steps)
    for num_envs in args.batch_sizes:
        before = time_vectors(num_envs, args.seed)
        log(f"JAX num_envs={num_envs}")
        runs.append(time_jax(env, params, num_envs, args.seconds, args.repeats, key))
        after = time_vectors(num_envs, args.seed + 1)
        vectors[num_envs] = {
            kind: VectorRun(
                kind=kind,
                num_envs=num_envs,
                num_steps=num_envs * whole_episodes(args.minigrid_steps, num_envs, episode),
                steps_per_second=(before[kind].steps_per_second + after[kind].steps_per_second) / 2,
                steps_per_second_start=before[kind].steps_per_second,
                steps_per_second_end=after[kind].steps_per_second,
                goals_per_episode=(before[kind].goals + after[kind].goals)
                / (before[kind].episodes + after[kind].episodes),
            )
            for kind in before
        }
    log("MiniGrid (end)")
    last = time_minigrid(args.n_blocks, args.minigrid_steps, args.repeats, args.seed + 1)

    minigrid = (first.steps_per_second + last.steps_per_second) / 2
    statistic = f"best of {args.repeats}"
    print(
        json.dumps(
            {
                "impl": "minigrid",
                "n_blocks": args.n_blocks,
                "num_steps": args.minigrid_steps,
                "statistic": statistic,
                "steps_per_second": minigrid,
                "steps_per_second_start": first.steps_per_second,
                "steps_per_second_end": last.steps_per_second,
                "goals_per_episode": (first.goals + last.goals) / (first.episodes + last.episodes),
            }
        )
    )
    for run in runs:
        for vector in vectors[run.num_envs].values():
            print(
                json.dumps(
                    {"impl": f"minigrid_{vector.kind}", "statistic": statistic, **asdict(vector)}
                )
            )
        ratios = {
            f"ratio_vs_minigrid_{kind}": run.steps_per_second / vector.steps_per_second
            for kind, vector in vectors[run.num_envs].items()
        }
        ratio = run.steps_per_second / minigrid
        print(json.dumps({"impl": "jax", **asdict(run), "ratio_vs_minigrid": ratio, **ratios}))
    summary = summarise(runs, minigrid, vectors)
    print(json.dumps({"impl": "summary", "statistic": statistic, **summary}))


if __name__ == "__main__":
    main()
