"""Experiment E (SPEC §5 E): does the learner go on helping the partner once the caregiver leaves?

Task 2, the boulder world (`internalize.envs.boulder`). For each seed, one socialization run with
the caregiver present (it rewards the learner when the partner reaches its goal), an ISR trained
on its data (observation, both agents' actions, social reward), then every autonomy condition
from the same socialized parameters: `oracle`, `none` and `isr`. The headline number is how often
the partner reaches its goal per 100-step episode (the learner's help), a mean over the last 10%
of the autonomy phase, per seed and condition. An example episode of the `isr` learner of the
first seed is rendered (`episode.gif`, `episode.png`), and the first seed's ISR is set beside
the caregiver's true reward on one layout (`reward_map.png`, see `MAP_SITUATIONS`).
"""

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import numpy as np

from internalize.envs.boulder import BoulderEnv, BoulderRules, agent_cells
from internalize.envs.layouts import border_mask, walls_mask
from internalize.envs.render import render_boulder
from internalize.experiments.common import RunDirectory, atomic_write
from internalize.experiments.phases import AUTONOMY_CONDITIONS as CONDITIONS
from internalize.experiments.retention import AutonomyConfig, Retention
from internalize.experiments.runner import Run
from internalize.isr.maps import boulder_reward_maps
from internalize.isr.model import ISRNetwork
from internalize.isr.train import ISRConfig
from internalize.learners.ppo import PPO, PRESETS, PPOConfig
from internalize.plots import reward_map_figure
from internalize.stats import welch_test

PROSOCIAL_PRESETS: dict[str, PPOConfig] = {
    "paper": PRESETS["paper"],
    "fast": PRESETS["fast"].replace(ent_coef=0.01, num_epochs=20, minibatch_size=256),
    "fast-cnn": PRESETS["fast-cnn"].replace(ent_coef=0.01, num_epochs=20, minibatch_size=256),
}
"""PPO settings for the boulder world. `fast` is the goals task's `fast` with an entropy bonus
0.01 and 20 epochs of 256-sample minibatches (160 gradient steps per 2,048-sample rollout):
with the goals task's settings (64 steps, no bonus) the learner did not learn to help within
1e6 steps; with these it helps about 1.4 times per episode after 2.4e5 (measured, seed 0)."""

PROSOCIAL_ISR_PRESETS: dict[str, ISRConfig] = {
    "paper": ISRConfig(batch_size=10, epochs=10.0),
    "fast": ISRConfig(batch_size=32, epochs=2.0, learning_rate=1e-3),
}
PROSOCIAL_ISR_PRESETS["fast-cnn"] = PROSOCIAL_ISR_PRESETS["fast"]
"""ISR training for task 2: `paper` is SPEC §4's 10 epochs at batch size 10; `fast` 2 epochs at
batch size 32 with Adam 1e-3 (13,500 Adam steps on 2.4e5 samples). Chosen on seed 1234 among
three settings, each with the ISR paying only above 0.2: 2 epochs at batch 256 (test MSE 7.7e-4,
isr at 52% of oracle's helping), 4 at batch 64 (2.1e-5, 77%) and this one (4.9e-6, 85%, and
the fastest to train of the two good ones)."""

HEADLINE = {"helps_per_episode": "goals_per_episode", "return": "true_return"}
"""results.json names -> `UpdateMetrics` fields (a "goal" is the partner reaching its goal)."""
ALSO_REPORTED = ("env_reward", "social_reward", "internal_reward", "learner_return")
PUBLISHED = {
    "source": "SPEC §5 E (qualitative)",
    "finding": "without an ISR the learner stops helping; with the ISR it goes on clearing the "
    "boulder for the partner",
}
EPISODE_FRAMES = 100
"""Steps of the rendered example episode."""
MAP_WALLS = ((1, 4), (2, 2), (2, 3), (3, 5), (4, 2), (4, 3), (4, 4))
"""The tree layout of `reward_map.png` (interior wall cells): three branches meet at (3, 1)."""
MAP_WALLS_8 = (*MAP_WALLS, (1, 5))
"""The same with the original's eighth block (`boulder.n_walls=8`), at the end of the middle
branch, which then ends at (2, 5)."""
MAP_GOAL = (4, 5)
"""The partner's goal, a leaf of the right-hand branch."""
MAP_SITUATIONS = {
    "boulder blocks the path": {"partner": (1, 3), "boulder": (3, 1)},
    "partner next to its goal": {"partner": (5, 5), "boulder": None},
}
"""The states of the reward map besides the learner: name -> the partner's cell and the
boulder's (None: the learner carries it). With the boulder on the junction between the partner
(at its leaf) and its goal, no single step lets the partner arrive, so the caregiver pays
nothing anywhere (the helpful pick-up is paid later, when the partner arrives); with the boulder
carried away and the partner on the goal's only neighbour, it pays 0.4 for every step but those
from the goal itself, where the learner stands in the partner's way."""


@dataclass(frozen=True)
class ProsocialConfig(AutonomyConfig):
    """Settings of the prosocial experiment."""

    PPO_PRESETS: ClassVar[Mapping[str, PPOConfig]] = PROSOCIAL_PRESETS
    ISR_PRESETS: ClassVar[Mapping[str, ISRConfig]] = PROSOCIAL_ISR_PRESETS

    socialize_steps: int = 240_000
    """Environment steps with the caregiver present (rounded up to whole rollouts)."""
    autonomy_steps: int = 240_000
    """Environment steps of each autonomy condition (rounded up to whole rollouts)."""
    isr_threshold: float | None = 0.2
    """If set, the ISR pays only where its prediction exceeds this (as in experiment B; None
    pays every prediction)."""
    boulder: BoulderRules = BoulderRules()
    """The boulder world's rules (`boulder.KEY`): SPEC §3's model, or each of the original's
    (SPEC §7): `n_walls=8`, `actions=original`, `learner_start=goal_side`, `partner=original`,
    `order=random`, `observation=original` (see `internalize.envs.boulder.BoulderRules`)."""


def map_walls(env: BoulderEnv) -> tuple[tuple[int, int], ...]:
    """The layout of `reward_map.png` for `env`'s number of wall blocks."""
    return MAP_WALLS_8 if env.rules.n_walls == 8 else MAP_WALLS


def example_episode(ppo: PPO, params, key: jax.Array, steps: int = EPISODE_FRAMES):
    """Run the policy `params` (sampling its actions) for `steps` steps of one environment.

    Returns the list of `steps + 1` states (unbatched, as numpy) and the step indices at which
    the partner reached its goal.
    """
    env, env_params = ppo.env, ppo.env_params

    def one_step(state, key):
        key_action, key_step = jax.random.split(key)
        logits, _ = ppo.policy(params, env.observe(state)[None])
        action = jax.random.categorical(key_action, logits[0])
        next_state, transition = env.step(key_step, state, action, env_params)
        return next_state, (state, transition.goal_reached)

    key_reset, key_steps = jax.random.split(key)
    first = env.reset(key_reset, env_params)
    last, (states, helped) = jax.jit(lambda first, keys: jax.lax.scan(one_step, first, keys))(
        first, jax.random.split(key_steps, steps)
    )
    frames = [jax.tree.map(lambda x, i=i: np.asarray(x[i]), states) for i in range(steps)]
    frames.append(jax.tree.map(np.asarray, last))
    return frames, np.flatnonzero(np.asarray(helped)).tolist()


def write_episode(run_dir: RunDirectory, frames, helped: list[int], strip: int = 12) -> None:
    """`episode.gif` (every frame) and `episode.png` (the first `strip` frames side by side)."""
    from PIL import Image

    images = [Image.fromarray(render_boulder(state, tile_size=24)) for state in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=200)
    atomic_write(run_dir.path / "episode.gif", buffer.getvalue())
    shown = images[:strip]
    width, height = shown[0].size
    sheet = Image.new("RGB", (width * len(shown) + 4 * (len(shown) - 1), height), (255, 255, 255))
    for i, image in enumerate(shown):
        sheet.paste(image, (i * (width + 4), 0))
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    atomic_write(run_dir.path / "episode.png", buffer.getvalue())


def reward_maps(
    env: BoulderEnv, env_params, isr_params, seed: int, network: ISRNetwork | None = None
) -> tuple[dict[str, np.ndarray], dict]:
    """The true and ISR reward maps of each of `MAP_SITUATIONS` (names `SITUATION: true`,
    `SITUATION: ISR (seed N)`), and the labelled cells (partner P, boulder B) of each map."""
    maps, marks = {}, {}
    for situation, cells in MAP_SITUATIONS.items():
        found = boulder_reward_maps(
            env,
            env_params,
            {"isr": isr_params},
            map_walls(env),
            cells["partner"],
            MAP_GOAL,
            cells["boulder"],
            network=network,
        )
        labels = [("P", cells["partner"])]
        if cells["boulder"] is not None:
            labels.append(("B", cells["boulder"]))
        for kind, values in (("true", found["true"]), (f"ISR (seed {seed})", found["isr"])):
            name = f"{situation}:\n{kind}"
            maps[name], marks[name] = values, labels
    return maps, marks


class Prosocial(Retention):
    """Retention's protocol in the boulder world, with the two-agent ISR; the analysis adds
    tests between conditions, an example episode and the reward maps."""

    HEADLINE = HEADLINE
    ALSO_REPORTED = ALSO_REPORTED
    RATIO = "helps_ratio_to_oracle"
    LABELS = {
        "goals_per_episode": "partner reaches its goal, per episode",
        "true_return": "return (true reward)",
    }
    AGENT_CELLS = staticmethod(agent_cells)

    def published_scale(self) -> dict:
        return {}  # Fig. 1's scale is the goals world's

    def make_env(self):
        env = BoulderEnv(rules=self.config.boulder)
        return env, env.make_params()

    @classmethod
    def render_world(cls, config: dict) -> tuple[Any, dict]:
        env_config = config.get("env", {})
        rules = BoulderRules(**config.get("boulder", {}))  # a run older than the rules: none
        env = BoulderEnv(egocentric=env_config.get("egocentric", True), rules=rules)
        return env, {None: env.make_params(max_steps=env_config.get("max_steps"))}

    def describe_env(self) -> dict:
        env, params = self.env, self.env_params
        return {
            "task": "boulder",
            "size": env.size,
            "egocentric": env.egocentric,
            "max_steps": int(params.max_steps),
            "forward_cost": float(params.forward_cost),
            "goal_reward": float(params.goal_reward),
        }

    @classmethod
    def condition_numbers(cls, per_seed: dict[str, dict[str, list[float]]]) -> dict:
        """Retention's, and Welch tests of helps per episode between conditions."""
        numbers = super().condition_numbers(per_seed)
        helps = {c: per_seed[c]["helps_per_episode"] for c in CONDITIONS}
        numbers["tests"] = {
            f"{a} vs {b}": welch_test(helps[a], helps[b]).as_dict()
            for a, b in (("none", "oracle"), ("isr", "oracle"), ("isr", "none"))
        }
        return numbers

    def analyse(self, outcome, run: Run) -> dict:
        numbers = super().analyse(outcome, run)
        _, _, isr, final, _ = outcome
        isr_index = CONDITIONS.index("isr")
        first_isr_policy = jax.tree.map(lambda x: x[isr_index, 0], final.train.params)
        frames, helped = example_episode(self.ppo, first_isr_policy, jax.random.key(run.seeds[0]))
        write_episode(run.directory, frames, helped)
        map_gap = self.save_reward_maps(jax.tree.map(lambda x: x[0], isr.params), run)
        return {
            **numbers,
            "published": PUBLISHED,
            "reward_map": {
                "walls": map_walls(self.env),
                "goal": MAP_GOAL,
                "situations": MAP_SITUATIONS,
                "max_abs_error": map_gap,
            },
            "example_episode": {
                "condition": "isr",
                "seed": run.seeds[0],
                "steps": EPISODE_FRAMES,
                "helped_at_steps": helped,
            },
        }

    def save_reward_maps(self, isr_params, run: Run) -> dict[str, float]:
        """`reward_map.png` of the first seed's ISR; returns, per situation, the largest gap
        between the ISR's reward and the true one."""
        seed = run.seeds[0]
        maps, marks = reward_maps(self.env, self.env_params, isr_params, seed, self.isr_network)
        gaps = {
            situation: float(np.nanmax(np.abs(maps[f"{situation}:\n{kind}"] - true)))
            for situation in MAP_SITUATIONS
            for kind, true in [(f"ISR (seed {seed})", maps[f"{situation}:\ntrue"])]
        }
        run.save_figure(
            "reward_map.png",
            reward_map_figure(
                maps,
                walls_mask(map_walls(self.env), self.env.size) | border_mask(self.env.size),
                MAP_GOAL,
                self.env.action_names,
                title="Reward for each learner cell, heading (triangle) and action, the partner "
                "moving as scripted: true R_s vs the ISR",
                marks=marks,
            ),
        )
        return gaps
