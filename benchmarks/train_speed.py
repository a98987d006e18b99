"""PPO training speed: the JAX presets against Stable-Baselines3 on MiniGrid, in one process.

Measures environment steps per second of PPO training on the goals gridworld (3 random blocks,
caregiver present, as in socialization):

* SB3: `benchmarks/sb3_goals.py` (`PPO("CnnPolicy")`, the paper's network and hyperparameters,
  one MiniGrid environment), `--sb3-steps` steps, timed first and again last (machines drift);
  the ratios use the mean of the two.
* JAX: `PPO.run` of each preset over `--seeds` seeds in one jitted call, vmapped or one after
  another as the preset says (`parallel_runs`); per-seed rates divide by the number of seeds;
  compile time measured apart (`.lower().compile()`) and left
  out of the rate; the best of `--repeats` runs.

Targets (issue 3): `paper` at least 5x SB3 per seed; `fast` at least 200x.

Output is JSON lines on stdout: "meta", one line per measurement, and "summary". Progress goes
to stderr. Needs the `baseline` extra (torch, stable-baselines3, minigrid) for the SB3 side;
`--no-sb3` skips it.

    python benchmarks/train_speed.py
"""

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import jax

from internalize.envs.goals import GoalsEnv
from internalize.experiments.phases import caregiver_present
from internalize.learners.ppo import PPO, PRESETS, over_runs

TARGETS = {"paper": 5.0, "fast": 200.0}


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_sb3():
    path = Path(__file__).with_name("sb3_goals.py")
    spec = importlib.util.spec_from_file_location("sb3_goals", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def time_jax(preset: str, seeds: int, updates: int, repeats: int) -> dict[str, Any]:
    env = GoalsEnv()
    ppo = PPO(PRESETS[preset], env, env.make_params(n_blocks=3))
    rewards = caregiver_present()

    def train(keys):
        def one_run(key):
            return ppo.run(ppo.init(key), rewards, updates)[1].goals_per_episode

        return over_runs(one_run, ppo.config.parallel_runs)(keys)

    keys = jax.random.split(jax.random.key(0), seeds)
    started = time.perf_counter()
    compiled = jax.jit(train).lower(keys).compile()
    compile_s = time.perf_counter() - started
    best, goals = float("inf"), None
    for repeat in range(repeats):
        keys = jax.random.split(jax.random.key(repeat), seeds)
        started = time.perf_counter()
        goals = jax.block_until_ready(compiled(keys))
        best = min(best, time.perf_counter() - started)
    steps = seeds * updates * ppo.config.batch_size
    return {
        "kind": "jax",
        "preset": preset,
        "seeds": seeds,
        "updates": updates,
        "steps": steps,
        "seconds": best,
        "steps_per_second": steps / best,
        "steps_per_second_per_seed": steps / best / seeds,
        "compile_seconds": compile_s,
        "final_goals_per_episode": float(goals[:, -1].mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sb3-steps", type=int, default=4096, help="SB3 steps per timing")
    parser.add_argument("--paper-updates", type=int, default=4, help="rollouts of 2048 steps")
    parser.add_argument("--fast-updates", type=int, default=30, help="rollouts of 2048 steps")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[1, 10], help="seed counts to time (vmapped)"
    )
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs")
    parser.add_argument("--presets", nargs="+", choices=sorted(PRESETS), default=["paper", "fast"])
    parser.add_argument("--no-sb3", action="store_true", help="skip the SB3 baseline")
    args = parser.parse_args()

    emit(
        {
            "kind": "meta",
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "jax": version("jax"),
            "backend": jax.default_backend(),
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
        }
    )
    sb3_rates = []
    sb3 = None if args.no_sb3 else load_sb3()

    def time_sb3(label: str) -> None:
        log(f"SB3 ({label}) ...")
        result = sb3.train_speed(args.sb3_steps, seed=1234, threads=1)
        result.pop("curve")
        sb3_rates.append(result["steps_per_second"])
        emit({"kind": "sb3", "when": label, **result})

    if sb3:
        time_sb3("first")
    jax_runs = []
    updates_of = {"paper": args.paper_updates, "fast": args.fast_updates}
    for preset, updates in ((preset, updates_of[preset]) for preset in args.presets):
        for seeds in args.seeds:
            log(f"JAX {preset}, {seeds} seeds ...")
            run = time_jax(preset, seeds, updates, args.repeats)
            jax_runs.append(run)
            emit(run)
    if sb3:
        time_sb3("last")

    summary: dict[str, Any] = {"kind": "summary"}
    if sb3_rates:
        baseline = sum(sb3_rates) / len(sb3_rates)
        summary["sb3_steps_per_second"] = baseline
        for run in jax_runs:
            name = f"{run['preset']}_{run['seeds']}_seeds"
            ratio = run["steps_per_second"] / baseline
            summary[name] = {
                "steps_per_second": run["steps_per_second"],
                "x_sb3": ratio,
                "x_sb3_per_seed": run["steps_per_second_per_seed"] / baseline,
                "target": TARGETS[run["preset"]],
                "met": ratio >= TARGETS[run["preset"]],
            }
    emit(summary)


if __name__ == "__main__":
    main()
