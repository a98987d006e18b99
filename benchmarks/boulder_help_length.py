"""How hard helping is to find in the boulder world: a random learner's helps, and the shortest.

    python benchmarks/boulder_help_length.py [--episodes 2000] [--search 20] [RULE=VALUE ...]

For `BoulderEnv(rules=BoulderRules(RULE=VALUE ...))` (the paper's rules unless given):

- a learner acting uniformly at random for `--episodes` episodes of 100 steps (the layout
  regenerating after each help, as in training): the partner's arrivals per episode, what such a
  learner stumbles on before it has learned anything;
- for `--search` random first states, a breadth-first search over the learner's action
  sequences, stepping the environment's own `move` with its scripted partner, for the fewest
  learner actions after which the partner arrives (up to `--depth`, 60): the share of states where
  a help is in reach and its length (the partner's walk included). Only deterministic rules:
  `order=random` draws who acts first from the step's key, so the search is skipped there.

This measures what the task offers a learner, not what a learner does: it is how
docs/fidelity.md tells why the original's `learner_start=goal_side` alone stops the `fast`
learner from learning to help.
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from internalize import config
from internalize.envs.boulder import BoulderEnv, BoulderRules


def _rules(settings: list[str]) -> BoulderRules:
    """The boulder rules with `RULE=VALUE` settings applied (`config.assign`, as `--set` does)."""
    try:
        return config.assign(BoulderRules(), settings)
    except ValueError as error:
        raise SystemExit(str(error)) from None


def _state_keys(states) -> np.ndarray:
    """One row of ints per state: everything `move` reads that changes within a layout."""
    parts = [
        states.learner,
        states.heading[:, None],
        states.carrying[:, None],
        states.boulder,
        states.partner,
        states.partner_heading[:, None],
    ]
    return np.concatenate([np.asarray(p, np.int32) for p in parts], axis=1)


def _rows(states, rows: np.ndarray):
    return jax.tree.map(lambda x: x[rows], states)


def shortest_helps(env: BoulderEnv, states, depth: int) -> np.ndarray:
    """For each state of the batch `states`: the fewest learner actions until the partner
    arrives (-1 where none within `depth`)."""
    params = env.make_params()
    actions = jnp.arange(env.num_actions)

    @jax.jit
    def expand(frontier):
        def one(state):
            return jax.vmap(lambda a: env.move(state, a, params))(actions)

        moved, transition = jax.vmap(one)(frontier)
        flat = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), moved)
        return flat, transition.goal_reached.reshape(-1)

    lengths = []
    for index in range(states.learner.shape[0]):
        frontier = _rows(states, np.array([index]))
        seen = {tuple(_state_keys(frontier)[0])}
        found = -1
        for step in range(1, depth + 1):
            size = frontier.learner.shape[0]
            # Padded to a power of two with copies of the first state: few shapes to compile.
            padded = 1 << max(size - 1, 0).bit_length()
            frontier = _rows(frontier, np.arange(padded) * (np.arange(padded) < size))
            moved, arrived = expand(frontier)
            arrived = np.asarray(arrived)[: size * len(actions)]
            if arrived.any():
                found = step
                break
            keys = _state_keys(moved)[: size * len(actions)]
            new = []
            for row, key in enumerate(map(tuple, keys)):
                if key not in seen:
                    seen.add(key)
                    new.append(row)
            if not new:
                break
            frontier = _rows(moved, np.array(new))
        lengths.append(found)
    return np.array(lengths)


def random_helps(env: BoulderEnv, key: jax.Array, episodes: int) -> np.ndarray:
    """The partner's arrivals in each of `episodes` episodes of a learner acting at random."""
    params = env.make_params()

    def episode(key):
        def act(state, key):
            key_action, key_step = jax.random.split(key)
            action = jax.random.randint(key_action, (), 0, env.num_actions)
            state, transition = env.step(key_step, state, action, params)
            return state, transition.goal_reached

        key_reset, key_steps = jax.random.split(key)
        steps = jax.random.split(key_steps, env.default_max_steps)
        _, arrived = jax.lax.scan(act, env.reset(key_reset, params), steps)
        return arrived.sum()

    return np.asarray(jax.jit(jax.vmap(episode))(jax.random.split(key, episodes)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rules", nargs="*", metavar="RULE=VALUE")
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--search", type=int, default=20)
    parser.add_argument("--depth", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if min(args.episodes, args.search, args.depth) <= 0:
        raise SystemExit("--episodes, --search and --depth must be positive")
    env = BoulderEnv(rules=_rules(args.rules))
    key_random, key_search = jax.random.split(jax.random.key(args.seed))
    print(f"rules: {env.rules}")
    helps = random_helps(env, key_random, args.episodes)
    print(
        f"random learner, {args.episodes} episodes: {helps.mean():.4f} "
        f"± {helps.std(ddof=1) / np.sqrt(len(helps)):.4f} arrivals per episode, "
        f"{(helps > 0).mean():.4f} of episodes with one"
    )
    if env.rules.order == "random":
        print("shortest help: not searched (order=random is not deterministic)")
        return
    keys = jax.random.split(key_search, args.search)
    states = jax.vmap(lambda k: env.reset(k, env.make_params()))(keys)
    lengths = shortest_helps(env, states, args.depth)
    reached = lengths >= 0
    q1, median, q3 = np.percentile(lengths[reached], [25, 50, 75])
    print(
        f"shortest help from {args.search} first states (depth {args.depth}): in reach in "
        f"{reached.mean():.3f}; learner actions mean {lengths[reached].mean():.1f}, "
        f"median {median:.0f}, quartiles {q1:.0f}-{q3:.0f}, max {lengths[reached].max()}"
    )


if __name__ == "__main__":
    main()
