"""Environment stepping against JAX peers: our goals world, NAVIX and XLand-MiniGrid.

In one process, environment steps per second with uniformly random actions of
* ours: `GoalsEnv.step_batch` (7x7 grid, 3 random blocks, 20-step episodes, auto-reset), through
  `env_speed.time_jax` (every observation cell read, so XLA cannot drop them);
* NAVIX (`navix`): `Navix-Empty-8x8-v0` with its symbolic first-person 7x7 view, vmapped over
  the batch, auto-reset inside its `step`;
* XLand-MiniGrid (`xminigrid`): `MiniGrid-Empty-8x8` (7x7 view), vmapped, with its
  `GymAutoResetWrapper`;
each a `lax.scan` over steps of a vmapped batch, timed like ours (calibrated to about
`--seconds` a run, compile apart, best of `--repeats`), 20-step episodes for all. The peers'
worlds are the nearest they ship (empty rooms of 6x6 cells inside walls, where ours has 5x5 with
blocks), so the figures compare the cost of a step and its observation, not identical tasks.

Needs the peers, which pin other versions than ours: run it in a virtual environment of its
own (`benchmarks/RESULTS.md` gives the one used), with `PYTHONPATH=src`:

    PYTHONPATH=src:benchmarks python benchmarks/peers_env.py
"""

import argparse
import json
import platform
import sys
import time
from importlib.metadata import version

import jax
import jax.numpy as jnp
from env_speed import ObservedGoalsEnv, time_jax

from internalize.numerics import describe

EPISODE = 20


def _rollout(reset, step, observe, num_actions: int, num_envs: int, num_steps: int):
    """A jitted random rollout of `num_envs` environments for `num_steps` steps that sums every
    observation (so that none is dropped); returns the sum."""

    def run(key):
        key_reset, key_steps = jax.random.split(key)
        states = jax.vmap(reset)(jax.random.split(key_reset, num_envs))

        def one_step(carry, key):
            states, total = carry
            actions = jax.random.randint(key, (num_envs,), 0, num_actions)
            states = jax.vmap(step)(states, actions)
            return (states, total + observe(states).sum(dtype=jnp.int32)), None

        keys = jax.random.split(key_steps, num_steps)
        (_, total), _ = jax.lax.scan(one_step, (states, jnp.int32(0)), keys)
        return total

    return jax.jit(run)


def time_peer(make, num_envs: int, seconds: float, repeats: int, key) -> dict:
    def compiled(num_steps):
        started = time.perf_counter()
        rollout = _rollout(*make(), num_envs, num_steps).lower(key).compile()
        return rollout, time.perf_counter() - started

    def timed(rollout, key):
        started = time.perf_counter()
        jax.block_until_ready(rollout(key))
        return time.perf_counter() - started

    calibration_steps = EPISODE * max(1, 200_000 // (num_envs * EPISODE))
    calibration, _ = compiled(calibration_steps)
    timed(calibration, key)
    rate = num_envs * calibration_steps / timed(calibration, key)
    num_steps = EPISODE * max(1, round(seconds * rate / (num_envs * EPISODE)))
    rollout, compile_seconds = compiled(num_steps)
    elapsed = min(timed(rollout, jax.random.fold_in(key, i)) for i in range(repeats))
    return {
        "num_envs": num_envs,
        "num_steps": num_steps,
        "steps_per_second": num_envs * num_steps / elapsed,
        "compile_seconds": compile_seconds,
    }


def navix():
    import navix as nx

    env = nx.make(
        "Navix-Empty-8x8-v0",
        max_steps=EPISODE,
        observation_fn=nx.observations.symbolic_first_person,
    )
    return env.reset, env.step, lambda timestep: timestep.observation, len(env.action_set)


def xland():
    import xminigrid
    from xminigrid.wrappers import GymAutoResetWrapper

    env, params = xminigrid.make("MiniGrid-Empty-8x8")
    params = params.replace(max_steps=EPISODE)
    env = GymAutoResetWrapper(env)
    return (
        lambda key: env.reset(params, key),
        lambda timestep, action: env.step(params, timestep, action),
        lambda timestep: timestep.observation,
        env.num_actions(params),
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64, 1024, 4096])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    key = jax.random.key(0)
    meta = {
        **describe(),
        "python": platform.python_version(),
        **{name: version(name) for name in ("jax", "jaxlib", "navix", "xminigrid")},
    }
    print(json.dumps({"meta": meta}), flush=True)
    env = ObservedGoalsEnv()
    params = env.make_params(n_blocks=3)
    for num_envs in args.batch_sizes:
        ours = time_jax(env, params, num_envs, args.seconds, args.repeats, key)
        line = {"num_envs": num_envs, "ours": ours.steps_per_second}
        for name, make in (("navix", navix), ("xminigrid", xland)):
            found = time_peer(make, num_envs, args.seconds, args.repeats, key)
            line[name] = found["steps_per_second"]
            line[f"{name}_compile_s"] = found["compile_seconds"]
        print(json.dumps(line), flush=True)
        print(f"{num_envs} envs done", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
