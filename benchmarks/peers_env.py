"""Environment stepping against JAX peers: our goals world, NAVIX and XLand-MiniGrid.

In one process, environment steps per second with uniformly random actions of
* ours: the goals world (`GoalsEnv`: 7x7 grid, 3 random blocks, 20-step episodes; a goal draws a
  fresh layout and the episode goes on);
* NAVIX (`navix`): `Navix-Empty-8x8-v0` with its symbolic first-person 7x7 view;
* XLand-MiniGrid (`xminigrid`): `MiniGrid-Empty-8x8` (7x7 view);
each a batch of `num_envs` environments stepped in one `lax.scan`, every observation summed (so
that XLA cannot drop any), timed alike: calibrated to about `--seconds` a run, compile apart,
best of `--repeats`, 20-step episodes for all, all episodes starting together.

The same reset rule for all three (`--reset-rules`, each measured in turn):
* `together`: every environment restarts at the 20-step boundary, all at once (a scan of
  20-step episodes, each followed by a restart of the whole batch, as our PPO restarts its
  environments). The peers' terminations (their goal reached, rare under random actions) do not
  restart an episode; ours still draws a fresh layout at a goal, as its task requires, only for
  the environments that reached one (`step_batch`).
* `select`: every step, each environment computes both its step and a new episode's first state
  and keeps the new one where its episode ended (the peers: terminated or truncated; ours: a goal
  or the truncation), as a vmapped `lax.cond` does (`lax.cond` under `vmap` computes both
  branches). Ours is `GoalsEnv.step_auto_reset` vmapped: one fresh layout per environment per
  step, kept where needed.
* `native`: each as it ships (what `benchmarks/RESULTS.md` measured before): ours
  `GoalsEnv.step_batch` (a fresh layout only for the environments that need one, none on a step
  where none does); NAVIX's `Environment.step`, which resets in the step after the episode ended
  (that step counts as a step here, so a 20-step episode takes 21); XLand-MiniGrid's
  `GymAutoResetWrapper` (a `lax.cond` in the step the episode ends).
Under every rule a restart's first observation is summed too, so each world builds it.

The peers' worlds are the nearest they ship: empty rooms of 6x6 cells inside walls, where ours
has 5x5 with blocks, so the figures compare the cost of a step and its observation, not identical
tasks. With `--starts fixed` (the default) the peers' agents start in a fixed cell, so their
restart draws nothing, where ours draws a random layout; `--starts random` uses their random-
start rooms (`Navix-Empty-Random-8x8-v0`, `MiniGrid-EmptyRandom-8x8`: a random cell and heading).

Output is JSON lines on stdout: a "meta" line, then per batch size and reset rule the rates, the
compile times and ours over each peer. Progress goes to stderr.

Needs the peers, which pin other versions than ours: run it in a virtual environment of its
own (`benchmarks/RESULTS.md` gives the one used), with `PYTHONPATH=src`:

    PYTHONPATH=src python benchmarks/peers_env.py
    PYTHONPATH=src python benchmarks/peers_env.py --reset-rules together select native \\
        --starts fixed random
"""

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from internalize.envs.base import select
from internalize.envs.goals import GoalsEnv, GoalsState
from internalize.numerics import describe

EPISODE = 20
"""Steps of every world's episode."""
RESET_RULES = ("together", "select", "native")
STARTS = ("fixed", "random")
CALIBRATION_STEPS = 200_000
"""Environment steps (over all environments) of the short run that sets `num_steps`."""

Batch = Any
"""A batch of environment states, leading axis `num_envs` (each world's own pytree)."""


def batch_size(states: Batch) -> int:
    """`num_envs` of a batch of states."""
    return jax.tree.leaves(states)[0].shape[0]


class World(NamedTuple):
    """One implementation, as the timing loop steps it. `key` is a JAX key, `actions`
    int32[num_envs]; every function of a batch returns the batch's next states."""

    reset: Callable[[jax.Array], Any]
    """key -> one environment's first state (its observation inside)."""
    step: Callable[[jax.Array, Batch, jax.Array], Batch]
    """(key, states, actions): one step of the batch that never restarts an episode."""
    restart_all: Callable[[jax.Array, Batch], Batch]
    """(key, states): a new episode's first state in every environment."""
    step_select: Callable[[jax.Array, Batch, jax.Array], Batch]
    """(key, states, actions): a step, a new episode's first state where the episode ended."""
    step_native: Callable[[jax.Array, Batch, jax.Array], Batch]
    """(key, states, actions): the world's own step with its own automatic reset."""
    observation: Callable[[Batch], jax.Array]
    """states -> the batch's observations."""
    num_actions: int


@struct.dataclass
class Observed:
    """Our state with its observation, as the peers' timesteps carry theirs."""

    state: GoalsState
    obs: jax.Array
    """uint8[..., 9, 9, 4]."""


def ours(start: str = "fixed") -> World:
    """The goals world (3 random blocks); `start` does not apply: a layout is always random."""
    env = GoalsEnv()
    params = env.make_params(n_blocks=3)

    def reset(key):
        state = env.reset(key, params)
        return Observed(state, env.observe(state))

    def step(key, states, actions):
        state, transition = env.step_batch(key, states.state, actions, params, auto_reset=False)
        return Observed(state, transition.obs)

    def restart_all(key, states):
        return jax.vmap(reset)(jax.random.split(key, batch_size(states)))

    def step_select(key, states, actions):
        keys = jax.random.split(key, actions.shape[0])
        state, transition = jax.vmap(env.step_auto_reset, in_axes=(0, 0, 0, None))(
            keys, states.state, actions, params
        )
        return Observed(state, transition.obs)

    def step_native(key, states, actions):
        state, transition = env.step_batch(key, states.state, actions, params, auto_reset=True)
        return Observed(state, transition.obs)

    return World(
        reset=reset,
        step=step,
        restart_all=restart_all,
        step_select=step_select,
        step_native=step_native,
        observation=lambda states: states.obs,
        num_actions=env.num_actions,
    )


def navix(start: str = "fixed") -> World:
    """NAVIX's empty 8x8 room, symbolic first-person view; `start`: `fixed` or `random`."""
    import navix as nx

    env = nx.make(
        "Navix-Empty-8x8-v0" if start == "fixed" else "Navix-Empty-Random-8x8-v0",
        max_steps=EPISODE,
        observation_fn=nx.observations.symbolic_first_person,
    )

    def restart(key, timestep):
        # As NAVIX's own step restarts: with the rendering cache the episode had.
        return env.reset(key, timestep.state.cache)

    def step(key, timesteps, actions):
        return jax.vmap(env._step)(timesteps, actions)  # NAVIX's step without its reset

    def restart_all(key, timesteps):
        return jax.vmap(restart)(jax.random.split(key, batch_size(timesteps)), timesteps)

    def step_select(key, timesteps, actions):
        stepped = step(key, timesteps, actions)
        fresh = restart_all(key, stepped)
        return jax.vmap(select)(stepped.is_done(), fresh, stepped)

    return World(
        reset=env.reset,
        step=step,
        restart_all=restart_all,
        step_select=step_select,
        step_native=lambda key, timesteps, actions: jax.vmap(env.step)(timesteps, actions),
        observation=lambda timesteps: timesteps.observation,
        num_actions=len(env.action_set),
    )


def xland(start: str = "fixed") -> World:
    """XLand-MiniGrid's empty 8x8 room, 7x7 view; `start`: `fixed` or `random`."""
    import xminigrid
    from xminigrid.wrappers import GymAutoResetWrapper

    env, params = xminigrid.make(
        "MiniGrid-Empty-8x8" if start == "fixed" else "MiniGrid-EmptyRandom-8x8"
    )
    params = params.replace(max_steps=EPISODE)
    auto_reset = GymAutoResetWrapper(env)

    def reset(key):
        return env.reset(params, key)

    def step(key, timesteps, actions):
        return jax.vmap(env.step, in_axes=(None, 0, 0))(params, timesteps, actions)

    def restart_all(key, timesteps):
        return jax.vmap(reset)(jax.random.split(key, batch_size(timesteps)))

    def step_select(key, timesteps, actions):
        stepped = step(key, timesteps, actions)
        return jax.vmap(select)(stepped.last(), restart_all(key, stepped), stepped)

    def step_native(key, timesteps, actions):
        return jax.vmap(auto_reset.step, in_axes=(None, 0, 0))(params, timesteps, actions)

    return World(
        reset=reset,
        step=step,
        restart_all=restart_all,
        step_select=step_select,
        step_native=step_native,
        observation=lambda timesteps: timesteps.observation,
        num_actions=env.num_actions(params),
    )


WORLDS = {"ours": ours, "navix": navix, "xminigrid": xland}


def make_rollout(world: World, rule: str, num_envs: int, num_steps: int):
    """A jitted `rollout(key) -> int32` total of every observation: `num_envs` environments,
    `num_steps` steps each (a multiple of `EPISODE`), uniformly random actions, episodes
    restarted by `rule` (see the module doc)."""

    def observed(states) -> jax.Array:
        return world.observation(states).sum(dtype=jnp.int32)

    def one_step(step: Callable) -> Callable:
        def run(carry, key):
            states, total = carry
            key_action, key_step = jax.random.split(key)
            actions = jax.random.randint(key_action, (num_envs,), 0, world.num_actions)
            states = step(key_step, states, actions)
            return (states, total + observed(states)), None

        return run

    def episode(carry, key):
        key_steps, key_restart = jax.random.split(key)
        keys = jax.random.split(key_steps, EPISODE)
        (states, total), _ = jax.lax.scan(one_step(world.step), carry, keys)
        states = world.restart_all(key_restart, states)
        return (states, total + observed(states)), None

    def rollout(key):
        key_reset, key_steps = jax.random.split(key)
        states = jax.vmap(world.reset)(jax.random.split(key_reset, num_envs))
        if rule == "together":
            loop, length = episode, num_steps // EPISODE
        else:
            step = world.step_select if rule == "select" else world.step_native
            loop, length = one_step(step), num_steps
        carry = (states, jnp.int32(0))
        (_, total), _ = jax.lax.scan(loop, carry, jax.random.split(key_steps, length))
        return total

    if rule not in RESET_RULES:
        raise ValueError(f"unknown reset rule {rule!r}; known: {RESET_RULES}")
    return jax.jit(rollout)


def time_world(
    world: World, rule: str, num_envs: int, seconds: float, repeats: int, key: jax.Array
) -> dict[str, float]:
    """Calibrate `num_steps` to about `seconds` a run, compile, and keep the best of `repeats`:
    steps per second (all environments) and compile seconds."""

    def compiled(num_steps: int):
        started = time.perf_counter()
        rollout = make_rollout(world, rule, num_envs, num_steps).lower(key).compile()
        return rollout, time.perf_counter() - started

    def timed(rollout, key) -> float:
        started = time.perf_counter()
        jax.block_until_ready(rollout(key))
        return time.perf_counter() - started

    calibration_steps = EPISODE * max(1, CALIBRATION_STEPS // (num_envs * EPISODE))
    calibration, _ = compiled(calibration_steps)
    timed(calibration, key)  # warm-up
    rate = num_envs * calibration_steps / timed(calibration, key)
    num_steps = EPISODE * max(1, round(seconds * rate / (num_envs * EPISODE)))
    rollout, compile_seconds = compiled(num_steps)
    elapsed = min(timed(rollout, jax.random.fold_in(key, i)) for i in range(repeats))
    return {
        "num_steps": num_steps,
        "steps_per_second": num_envs * num_steps / elapsed,
        "compile_seconds": compile_seconds,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64, 1024, 4096])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--reset-rules", nargs="+", choices=RESET_RULES, default=["together", "select"]
    )
    parser.add_argument(
        "--starts",
        nargs="+",
        choices=STARTS,
        default=["fixed"],
        help="the peers' rooms: a fixed start cell, or a random cell and heading",
    )
    args = parser.parse_args(argv)
    key = jax.random.key(0)
    meta = {
        **describe(),
        "python": platform.python_version(),
        **{name: version(name) for name in ("jax", "jaxlib", "navix", "xminigrid")},
    }
    print(json.dumps({"meta": meta}), flush=True)
    for num_envs in args.batch_sizes:
        for rule in args.reset_rules:
            rates, compile_seconds = {}, {}
            for name, make in WORLDS.items():
                for start in ["fixed"] if name == "ours" else args.starts:
                    label = name if start == "fixed" else f"{name}_random_start"
                    print(f"{num_envs} envs, {rule}: {label}", file=sys.stderr, flush=True)
                    found = time_world(make(start), rule, num_envs, args.seconds, args.repeats, key)
                    rates[label] = found["steps_per_second"]
                    compile_seconds[label] = found["compile_seconds"]
            line = {
                "num_envs": num_envs,
                "reset_rule": rule,
                "statistic": f"best of {args.repeats}",
                "steps_per_second": rates,
                "compile_seconds": compile_seconds,
                "ours_over": {
                    label: rates["ours"] / rate for label, rate in rates.items() if label != "ours"
                },
            }
            print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
