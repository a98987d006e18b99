"""Steps per second of `BoulderEnv.step_batch` (random learner actions, scripted partner,
observations read), one `lax.scan` per measurement; best of `--repeats`. Prints JSON lines."""

import argparse
import json
import time

import jax
import jax.numpy as jnp

from internalize.envs.boulder import BoulderEnv


def make_rollout(env: BoulderEnv, num_envs: int, num_steps: int):
    params = env.make_params()

    def rollout(key):
        states = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, num_envs), params)

        def one(states, key):
            key_action, key_step = jax.random.split(key)
            actions = jax.random.randint(key_action, (num_envs,), 0, env.num_actions)
            states, step = env.step_batch(key_step, states, actions, params)
            # Read the observations so that XLA cannot drop them.
            return states, (step.goal_reached.sum(), step.obs.astype(jnp.int32).sum())

        _, (helps, checksum) = jax.lax.scan(one, states, jax.random.split(key, num_steps))
        return helps.sum(), checksum.sum()

    return jax.jit(rollout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64, 1024, 4096])
    parser.add_argument("--env-steps", type=int, default=400_000, help="per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    env = BoulderEnv()
    key = jax.random.key(0)
    for num_envs in args.batch_sizes:
        num_steps = max(100, args.env_steps // num_envs // 100 * 100)
        if num_envs == 1:
            num_steps = 20_000
        rollout = make_rollout(env, num_envs, num_steps)
        started = time.perf_counter()
        compiled = rollout.lower(key).compile()
        compile_s = time.perf_counter() - started
        best = float("inf")
        for _ in range(args.repeats):
            started = time.perf_counter()
            helps, _ = jax.block_until_ready(compiled(key))
            best = min(best, time.perf_counter() - started)
        steps = num_envs * num_steps
        print(
            json.dumps(
                {
                    "num_envs": num_envs,
                    "num_steps": num_steps,
                    "steps_per_second": steps / best,
                    "compile_s": compile_s,
                    "helps_per_episode": float(helps) / (steps / 100),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
