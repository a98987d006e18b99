"""PPO training speed against a JAX peer: our `fast` PPO beside rejax's PPO on our goals task.

In one process, environment steps per second of PPO training on the goals gridworld (3 random
blocks, caregiver present: reward R_e + R_s, 20-step episodes):
* ours: `PPO.run` of the `fast` preset (32 environments x 64 steps a rollout, 4 epochs of 16
  minibatches, Adam 1e-3), one seed, in one jitted call;
* rejax (`rejax.PPO`, a vectorised JAX PPO): the same rollout, epochs, minibatches and learning
  rate, on the goals world seen through a gymnax (0.0.x) environment defined here (observations
  flattened and scaled by 0.1 as `fast` scales them; `done` at the 20-step truncation).
  Its actor and critic are two MLPs of hidden sizes (64, 32), ReLU; ours shares one 64-wide ReLU
  layer between a 32-wide tanh policy head and a 32-wide tanh value head, so rejax computes the
  first layer twice. Its evaluation, which ours has no counterpart of, is replaced by a no-op.
Compile time is measured apart and left out of the rates; each rate is the best of `--repeats`.

rejax 0.1.3 needs gymnax < 1.0 (`../shared/FACTS.md`), so run this in a virtual environment of
its own (`benchmarks/RESULTS.md` gives the one used):

    PYTHONPATH=src python benchmarks/peers_ppo.py
"""

import argparse
import json
import sys
import time
from importlib.metadata import version

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from internalize.envs.goals import GoalsEnv
from internalize.learners.ppo import PPO, PRESETS
from internalize.numerics import describe
from internalize.social.rewards import caregiver_present


@struct.dataclass
class GoalsGymnaxParams:
    goals: object
    max_steps_in_episode: int = 20


class GoalsGymnax(environment.Environment):
    """The goals world as a gymnax 0.0.x environment (the API rejax 0.1.3 steps)."""

    def __init__(self) -> None:
        super().__init__()
        self.env = GoalsEnv()

    @property
    def default_params(self) -> GoalsGymnaxParams:
        return GoalsGymnaxParams(goals=self.env.make_params(n_blocks=3))

    def _flat(self, obs):
        return obs.reshape(-1).astype(jnp.float32) * 0.1

    def step_env(self, key, state, action, params):
        state, transition = self.env.step(key, state, action, params.goals)
        reward = transition.env_reward + transition.social_reward
        info = {"goal_reached": transition.goal_reached}
        return self._flat(transition.obs), state, reward, transition.truncated, info

    def reset_env(self, key, params):
        state = self.env.reset(key, params.goals)
        return self._flat(self.env.observe(state)), state

    @property
    def num_actions(self) -> int:
        return self.env.num_actions

    def action_space(self, params=None):
        return spaces.Discrete(self.env.num_actions)

    def observation_space(self, params=None):
        size = int(
            self._flat(
                self.env.observe(self.env.reset(jax.random.key(0), self.default_params.goals))
            ).size
        )
        return spaces.Box(0.0, 25.5, (size,), jnp.float32)


def best_of(compiled, make_key, repeats: int) -> float:
    elapsed = []
    for repeat in range(repeats):
        key = make_key(repeat)
        started = time.perf_counter()
        jax.block_until_ready(compiled(key))
        elapsed.append(time.perf_counter() - started)
    return min(elapsed)


def time_ours(updates: int, repeats: int) -> dict:
    env = GoalsEnv()
    ppo = PPO(PRESETS["fast"], env, env.make_params(n_blocks=3))

    def train(key):
        return ppo.run(ppo.init(key), caregiver_present(), updates)[1].goals_per_episode

    started = time.perf_counter()
    compiled = jax.jit(train).lower(jax.random.key(0)).compile()
    compile_s = time.perf_counter() - started
    seconds = best_of(compiled, jax.random.key, repeats)
    steps = updates * ppo.config.batch_size
    goals = compiled(jax.random.key(0))
    return {
        "steps_per_second": steps / seconds,
        "compile_s": compile_s,
        "final_goals_per_episode": float(goals[-4:].mean()),
    }


def time_rejax(updates: int, repeats: int) -> dict:
    from rejax import PPO as RejaxPPO

    fast = PRESETS["fast"]
    steps = updates * fast.batch_size
    env = GoalsGymnax()
    algo = RejaxPPO.create(
        env=env,
        env_params=env.default_params,
        num_envs=fast.num_envs,
        num_steps=fast.num_steps,
        num_epochs=fast.num_epochs,
        num_minibatches=fast.batch_size // fast.minibatch_size,
        learning_rate=fast.learning_rate,
        total_timesteps=steps,
        eval_freq=steps,
        skip_initial_evaluation=True,
        agent_kwargs={"hidden_layer_sizes": (64, 32), "activation": "relu"},
    )
    algo = algo.replace(eval_callback=lambda algo, ts, rng: jnp.zeros(()))
    started = time.perf_counter()
    compiled = jax.jit(algo.train).lower(jax.random.key(0)).compile()
    compile_s = time.perf_counter() - started
    seconds = best_of(compiled, jax.random.key, repeats)
    return {"steps_per_second": steps / seconds, "compile_s": compile_s}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=60, help="rollouts of 2,048 steps")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    meta = {**describe(), **{name: version(name) for name in ("jax", "rejax", "gymnax")}}
    print(json.dumps({"meta": meta}), flush=True)
    ours = time_ours(args.updates, args.repeats)
    print(json.dumps({"ours_fast": ours}), flush=True)
    rejax = time_rejax(args.updates, args.repeats)
    print(json.dumps({"rejax": rejax}), flush=True)
    ratio = ours["steps_per_second"] / rejax["steps_per_second"]
    print(json.dumps({"summary": {"ours_over_rejax": ratio}}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
