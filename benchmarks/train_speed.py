"""PPO training speed: the JAX presets against Stable-Baselines3 on MiniGrid, in one process.

Measures environment steps per second of PPO training on the goals gridworld (3 random blocks,
caregiver present, as in socialization):

* SB3: `benchmarks/sb3_goals.py` (`PPO("CnnPolicy")`, the paper's network and hyperparameters,
  one MiniGrid environment), `--sb3-steps` steps, timed first and again last (machines drift);
  the ratios (`x_sb3`) use the mean of the two. This sets every preset against the paper's
  set-up: for `fast` (an MLP, 32 environments, 4 epochs) it compares presets, not
  implementations.
* SB3 doing the same work as each preset, like for like (`sb3_goals.make_preset_model`): the
  preset's network (`fast`: the MLP, Dense 64 ReLU shared, 32-unit tanh heads; `fast-cnn`: the
  paper's CNN), its number of environments (SB3's `DummyVecEnv`, stepped in turn in one process),
  `num_steps`, epochs, minibatch size, learning rate and observation scale; `--sb3-steps` steps,
  timed just before and just after the preset's JAX runs, the ratios (`x_sb3_same_work`, and per
  JAX seed `x_sb3_same_work_per_seed`: SB3 trains one seed) against the mean. For `paper` that
  is the SB3 baseline above, which does exactly its work. (SB3's `SubprocVecEnv`, a process per
  environment, is left out: 32 processes on a machine of a few cores.)
* JAX: `PPO.run` of each preset over `--seeds` seeds in one jitted call, vmapped or one after
  another as the preset says (`parallel_runs`); per-seed rates divide by the number of seeds;
  compile time measured apart (`.lower().compile()`) and left
  out of the rate; the best of `--repeats` runs.

SB3 runs torch on `--sb3-threads` threads (1 by default: a second made it no faster, RESULTS.md).
Targets (issue 3, against the paper's SB3): `paper` at least 5x SB3 per seed; `fast` at least
200x; `fast-cnn` has none.

Output is JSON lines on stdout: "meta", one line per measurement, and "summary". Progress goes
to stderr. Needs the `baseline` extra (torch, stable-baselines3, minigrid) for the SB3 side;
`--no-sb3` skips it.

    python benchmarks/train_speed.py
    python benchmarks/train_speed.py --presets fast --seeds 1 --no-sb3
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
"""Speed targets against the paper's SB3 set-up (issue 3), by preset."""
SAME_WORK_AS_BASELINE = "paper"
"""The preset whose work the SB3 baseline already does (one environment, the paper's CNN)."""


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
    parser.add_argument("--fast-cnn-updates", type=int, default=8, help="rollouts of 2048 steps")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[1, 10], help="seed counts to time (vmapped)"
    )
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs")
    parser.add_argument("--presets", nargs="+", choices=sorted(PRESETS), default=list(PRESETS))
    parser.add_argument("--no-sb3", action="store_true", help="skip SB3 (both baselines)")
    parser.add_argument("--sb3-threads", type=int, default=1, help="torch threads for SB3")
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
    same_work_rates: dict[str, list[float]] = {}
    sb3 = None if args.no_sb3 else load_sb3()

    def time_sb3(label: str, preset: str | None = None) -> float:
        """SB3's steps per second: the paper's set-up, or with `preset` that preset's work."""
        log(f"SB3 {preset or 'baseline'} ({label}) ...")
        result = sb3.train_speed(args.sb3_steps, seed=1234, threads=args.sb3_threads, preset=preset)
        result.pop("curve")
        kind = "sb3" if preset is None else "sb3_same_work"
        emit({"kind": kind, "when": label, **result})
        return result["steps_per_second"]

    if sb3:
        sb3_rates.append(time_sb3("first"))
    jax_runs = []
    updates_of = {
        "paper": args.paper_updates,
        "fast": args.fast_updates,
        "fast-cnn": args.fast_cnn_updates,
    }
    for preset in args.presets:
        same_work = sb3 is not None and preset != SAME_WORK_AS_BASELINE
        if same_work:
            same_work_rates[preset] = [time_sb3("before", preset)]
        for seeds in args.seeds:
            log(f"JAX {preset}, {seeds} seeds ...")
            run = time_jax(preset, seeds, updates_of[preset], args.repeats)
            jax_runs.append(run)
            emit(run)
        if same_work:
            same_work_rates[preset].append(time_sb3("after", preset))
    if sb3:
        sb3_rates.append(time_sb3("last"))

    summary: dict[str, Any] = {"kind": "summary"}
    if sb3_rates:
        baseline = sum(sb3_rates) / len(sb3_rates)
        same_work_rates[SAME_WORK_AS_BASELINE] = sb3_rates
        summary["sb3_steps_per_second"] = baseline
        summary["sb3_same_work_steps_per_second"] = {
            preset: sum(rates) / len(rates) for preset, rates in same_work_rates.items()
        }
        for run in jax_runs:
            name = f"{run['preset']}_{run['seeds']}_seeds"
            ratio = run["steps_per_second"] / baseline
            same_work = summary["sb3_same_work_steps_per_second"][run["preset"]]
            target = TARGETS.get(run["preset"])
            summary[name] = {
                "steps_per_second": run["steps_per_second"],
                "x_sb3": ratio,
                "x_sb3_per_seed": run["steps_per_second_per_seed"] / baseline,
                "x_sb3_same_work": run["steps_per_second"] / same_work,
                "x_sb3_same_work_per_seed": run["steps_per_second_per_seed"] / same_work,
                "target": target,
                "met": None if target is None else ratio >= target,
            }
    emit(summary)


if __name__ == "__main__":
    main()
