"""PPO training speed against a JAX peer: our `fast` PPO beside rejax's PPO on our goals task.

In one process, environment steps per second of PPO training on the goals gridworld (3 random
blocks, caregiver present: reward R_e + R_s, 20-step episodes), four learners:
* `ours_fast`: `PPO.run` of the `fast` preset (32 environments x 64 steps a rollout, 4 epochs of
  16 minibatches, Adam 1e-3), one seed, in one jitted call. Its network shares one 64-wide ReLU
  layer between a 32-wide tanh policy head and a 32-wide tanh value head.
* `ours_rejax_network`: the same PPO with rejax's network instead (`SeparateActorCritic`): an
  actor and a critic MLP of hidden sizes (64, 32), ReLU, nothing shared.
* `rejax` (`rejax.PPO`, a vectorised JAX PPO): the same rollout, epochs, minibatches, learning
  rate, discount, GAE lambda, clip range and loss coefficients, hidden sizes (64, 32), ReLU, on
  the goals world seen through a gymnax (0.0.x) environment defined here (`GoalsGymnax`:
  observations flattened and scaled by 0.1 as `fast` scales them; `done` at the 20-step
  truncation). rejax's actor and critic are two MLPs, so it computes the 64-wide first layer
  twice where `ours_fast` shares it. gymnax's `Environment.step` computes `reset_env` at every
  step and selects it where the episode ended, beside the layout our step draws for a goal: two
  layouts per environment per step.
* `rejax_lean_adapter`: rejax as above on `LeanGoalsGymnax`, whose `step`, vmapped as rejax
  vmaps it, is our `GoalsEnv.step_batch` (`jax.custom_batching.custom_vmap`): layouts drawn only
  for the environments that need one, as our PPO steps its environments.
rejax's evaluation, which ours has no counterpart of, is replaced by a no-op.

Like for like is `ours_rejax_network` against `rejax_lean_adapter` (the same network, the same
environment steps); the summary also gives `ours_fast` against `rejax` (the figure measured
before), what the network costs ours, and what the adapter cost rejax. Left different: rejax
clips the value loss, clips each gradient element (`optax.clip`, its `max_grad_norm` left at its
default, no clipping) where ours clips the global norm, and takes an actor and a critic gradient
step per minibatch where ours takes one of the joint loss.
Compile time is measured apart and left out of the rates; each rate is the best of `--repeats`.

rejax 0.1.3 needs gymnax < 1.0 (`../shared/FACTS.md`), so run this in a virtual environment of
its own (`benchmarks/RESULTS.md` gives the one used):

    PYTHONPATH=src python benchmarks/peers_ppo.py
"""

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from internalize.blocks import SQRT2, orthogonal
from internalize.envs.goals import GoalsEnv
from internalize.learners.ppo import PPO, PRESETS
from internalize.numerics import describe
from internalize.social.rewards import caregiver_present

REJAX_HIDDEN = (64, 32)
"""Hidden sizes of rejax's actor and of its critic (`fast`'s widths)."""


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
        return self._outputs(*self.env.step(key, state, action, params.goals))

    def _outputs(self, state, transition):
        """gymnax's (obs, state, reward, done, info) of one of our steps."""
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


class LeanGoalsGymnax(GoalsGymnax):
    """`GoalsGymnax` whose `step` draws layouts as ours does, instead of gymnax's.

    One environment's step is `GoalsEnv.step_auto_reset` (one fresh layout, kept for a goal or a
    new episode). Vmapped with the keys, states and actions batched (as rejax steps its
    environments), it is `GoalsEnv.step_batch` over the batch, from the batch's first key: fresh
    layouts only for the environments that need one, none on a step where none does.
    """

    def step(self, key, state, action, params=None):
        params = self.default_params if params is None else params

        def one(key, state, action, params):
            return self._outputs(*self.env.step_auto_reset(key, state, action, params.goals))

        # rejax vmaps `env.step` over its environments (`jax.vmap(env.step, in_axes=(0, 0, 0,
        # None))`); `custom_vmap` lets the adapter answer that vmap with one batched step,
        # leaving rejax's code as it is.
        @jax.custom_batching.custom_vmap
        def lean_step(key, state, action, params):
            return one(key, state, action, params)

        @lean_step.def_vmap
        def step_batched(axis_size, in_batched, key, state, action, params):
            key_batched, state_batched, action_batched, params_batched = in_batched
            batched = key_batched and action_batched and all(jax.tree.leaves(state_batched))
            if batched and not any(jax.tree.leaves(params_batched)):
                state, transition = self.env.step_batch(
                    key[0], state, action, params.goals, auto_reset=True
                )
                outputs = jax.vmap(self._outputs)(state, transition)
            else:  # another batching than rejax's: one environment's step, vmapped
                in_axes = jax.tree.map(lambda b: 0 if b else None, tuple(in_batched))
                outputs = jax.vmap(one, in_axes=in_axes)(key, state, action, params)
            return outputs, jax.tree.map(lambda _: True, outputs)

        return lean_step(key, state, action, params)


class SeparateActorCritic(nn.Module):
    """rejax's PPO network: an actor MLP and a critic MLP, nothing shared, ReLU (initialised as
    ours: orthogonal, gain sqrt 2, 0.01 for the logits, 1 for the value; zero biases).
    obs float[..., H, W, C] -> (logits float[..., A], value float[...])."""

    num_actions: int
    hidden_widths: Sequence[int] = REJAX_HIDDEN

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = obs.reshape(*obs.shape[:-3], -1)

        def mlp(outputs: int, out_gain: float) -> jax.Array:
            hidden = x
            for width in self.hidden_widths:
                hidden = nn.relu(nn.Dense(width, kernel_init=orthogonal(SQRT2))(hidden))
            return nn.Dense(outputs, kernel_init=orthogonal(out_gain))(hidden)

        return mlp(self.num_actions, 0.01), mlp(1, 1.0)[..., 0]


@dataclass(frozen=True)
class RejaxNetworkPPO(PPO):
    """Our PPO with rejax's network (`SeparateActorCritic`) instead of its config's."""

    @property
    def network(self) -> nn.Module:
        return SeparateActorCritic(num_actions=self.env.num_actions)


def best_of(compiled, make_key, repeats: int) -> float:
    elapsed = []
    for repeat in range(repeats):
        key = make_key(repeat)
        started = time.perf_counter()
        jax.block_until_ready(compiled(key))
        elapsed.append(time.perf_counter() - started)
    return min(elapsed)


def time_ours(updates: int, repeats: int, learner: type[PPO] = PPO) -> dict:
    """`learner` (our PPO, or it with rejax's network) with the `fast` preset."""
    env = GoalsEnv()
    ppo = learner(PRESETS["fast"], env, env.make_params(n_blocks=3))

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


def time_rejax(updates: int, repeats: int, adapter: type[GoalsGymnax] = GoalsGymnax) -> dict:
    """rejax's PPO with `fast`'s settings on the goals world through `adapter`."""
    from rejax import PPO as RejaxPPO

    fast = PRESETS["fast"]
    steps = updates * fast.batch_size
    env = adapter()
    algo = RejaxPPO.create(
        env=env,
        env_params=env.default_params,
        num_envs=fast.num_envs,
        num_steps=fast.num_steps,
        num_epochs=fast.num_epochs,
        num_minibatches=fast.batch_size // fast.minibatch_size,
        learning_rate=fast.learning_rate,
        gamma=fast.gamma,
        gae_lambda=fast.gae_lambda,
        clip_eps=fast.clip_eps,
        vf_coef=fast.vf_coef,
        ent_coef=fast.ent_coef,
        total_timesteps=steps,
        eval_freq=steps,
        skip_initial_evaluation=True,
        agent_kwargs={"hidden_layer_sizes": REJAX_HIDDEN, "activation": "relu"},
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
    rates = {}
    for name, measure in (
        ("ours_fast", lambda: time_ours(args.updates, args.repeats)),
        ("ours_rejax_network", lambda: time_ours(args.updates, args.repeats, RejaxNetworkPPO)),
        ("rejax", lambda: time_rejax(args.updates, args.repeats)),
        ("rejax_lean_adapter", lambda: time_rejax(args.updates, args.repeats, LeanGoalsGymnax)),
    ):
        print(name, file=sys.stderr, flush=True)
        found = measure()
        rates[name] = found["steps_per_second"]
        print(json.dumps({name: found}), flush=True)
    summary = {
        "ours_over_rejax": rates["ours_fast"] / rates["rejax"],
        "like_for_like": rates["ours_rejax_network"] / rates["rejax_lean_adapter"],
        "ours_shared_over_separate_network": rates["ours_fast"] / rates["ours_rejax_network"],
        "rejax_lean_over_gymnax_adapter": rates["rejax_lean_adapter"] / rates["rejax"],
    }
    print(json.dumps({"summary": summary}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
