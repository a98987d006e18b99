"""Episodes of a run's saved policies side by side, as GIFs: `internalize render RUN_DIR`.

A run directory holds `checkpoints.msgpack` (`internalize.experiments.common.save_checkpoints`).
Per experiment, one policy set plays the same episodes, one panel per policy:

- `retention`, `prosocial`: socialized | none | isr | oracle (the socialized learner, then each
  autonomy condition's final learner);
- `hacking`: socialized | isr_partial | isr_full;
- `ood` (5 random blocks) and `layouts` (one GIF per hand-picked layout): socialized | frozen |
  oracle | isr on the test task.

Every policy meets the same layouts: the episodes start from the same state, the k-th fresh
layout (drawn when the k-th goal is reached, or the partner's k-th arrival) comes from the same
key for every policy, and the actions are sampled (as the experiments evaluate them) with the
same random numbers, so two identical policies play identical episodes. All episodes of a set
are played by one jitted `lax.scan`, vmapped over policies and episodes; pictures are drawn in
numpy and Pillow outside jit (`internalize.envs.render`).
"""

import functools
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from internalize.experiments import registry
from internalize.experiments.common import (
    CHECKPOINTS_FILE,
    atomic_write,
    load_checkpoints,
    read_json_object,
)
from internalize.experiments.registry import REGISTRY
from internalize.trained import params_template, pick_params

RENDER_FOLDER = "render"
"""Default output folder, inside each experiment's directory."""
TILE_SIZE = 24
"""Pixels per grid cell."""
PANEL_MARGIN = 6
"""Pixels left and right of each panel's grid."""
TEXT_HEIGHT = 16
"""Pixels of one line of text (Pillow's bitmap font is 11 pixels high)."""
FRAME_MS = 200
"""Duration of one frame."""
BACKGROUND, TEXT, FLASH = (255, 255, 255), (20, 20, 20), (0, 150, 0)
EXPERIMENTS = tuple(name for name, record in REGISTRY.items() if record.renders)
"""Experiments with policies to render (`internalize.experiments.registry`)."""


def panel_width(grid_size: int, tile_size: int = TILE_SIZE) -> int:
    """Width in pixels of one policy's panel."""
    return grid_size * tile_size + 2 * PANEL_MARGIN


def frame_height(grid_size: int, tile_size: int = TILE_SIZE) -> int:
    """Height in pixels of a frame: a header line, panel titles, grids, counters."""
    return grid_size * tile_size + 3 * TEXT_HEIGHT


@dataclass(frozen=True)
class PolicySet:
    """Policies that play the same episodes, one panel each."""

    stem: str
    """File name without `.gif`."""
    title: str
    """Shown in every frame's header."""
    names: tuple[str, ...]
    """Panel titles, one per policy."""
    params: Any
    """Their parameters stacked along a leading policy axis."""
    ppo: Any
    """A `PPO` of the task (its network, environment and environment parameters)."""
    counted: str
    """What the counter under each panel counts ("goals", "partner arrivals")."""


class Episodes:
    """Played episodes: `states` with leading axes [episodes, steps + 1, policies] (the first
    state, then the state after each step) and `reached` bool[episodes, steps, policies] (the
    step reached a goal, or the partner arrived)."""

    def __init__(self, states, reached: np.ndarray) -> None:
        self.states, self.reached = states, reached

    def state(self, episode: int, step: int, policy: int):
        """One unbatched state, numpy leaves."""
        return jax.tree.map(lambda x: x[episode, step, policy], self.states)


@functools.cache
def _player(env, config, steps: int) -> Callable:
    """A jitted `(params [P, ...], env_params, keys [E]) -> (states, reached)` for `steps`-step
    episodes of `env` with the network of the PPO settings `config` (cached, so policy sets of
    one task and size share a compilation)."""
    from internalize.learners.ppo import PPO

    ppo = PPO(config, env, None)

    def episode(params, env_params, key):
        key_reset, key_actions, key_layouts = jax.random.split(key, 3)
        first = env.reset(key_reset, env_params)
        count = jax.tree.leaves(params)[0].shape[0]
        states = jax.tree.map(lambda x: jnp.broadcast_to(x, (count, *x.shape)), first)

        def one_step(carry, key_action):
            states, reached_so_far = carry
            obs = jax.vmap(env.observe)(states)
            logits = jax.vmap(lambda p, o: ppo.policy(p, o[None])[0][0])(params, obs)
            # The same random numbers for every policy: equal policies act alike.
            actions = jax.vmap(lambda lg: jax.random.categorical(key_action, lg))(logits)
            # The key only draws the fresh layout after a goal: the k-th is the same for all.
            layout_keys = jax.vmap(lambda n: jax.random.fold_in(key_layouts, n))(reached_so_far)
            states, transition = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                layout_keys, states, actions, env_params
            )
            reached = transition.goal_reached
            return (states, reached_so_far + reached), (states, reached)

        _, (later, reached) = jax.lax.scan(
            one_step,
            (states, jnp.zeros(count, jnp.int32)),
            jax.random.split(key_actions, steps),
        )
        states = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), states, later)
        return states, reached

    return jax.jit(jax.vmap(episode, in_axes=(None, None, 0)))


def play(policies: PolicySet, key: jax.Array, episodes: int) -> Episodes:
    """Play `episodes` full episodes (`max_steps` steps each) with every policy of the set."""
    ppo = policies.ppo
    steps = int(ppo.env_params.max_steps)
    states, reached = _player(ppo.env, ppo.config, steps)(
        policies.params, ppo.env_params, jax.random.split(key, episodes)
    )
    return Episodes(jax.tree.map(np.asarray, states), np.asarray(reached))


def draw_frames(policies: PolicySet, episodes: Episodes, tile_size: int = TILE_SIZE) -> list:
    """One RGB Pillow image per state: a header (set, episode, step), then per policy its
    title, the grid, and its running count (green on the frame right after a new one)."""
    from PIL import Image, ImageDraw, ImageFont

    from internalize.envs.boulder import BoulderEnv
    from internalize.envs.render import render_boulder, render_goals

    render = render_boulder if isinstance(policies.ppo.env, BoulderEnv) else render_goals
    font = ImageFont.load_default_imagefont()
    num_episodes, steps, num_policies = episodes.reached.shape
    size = policies.ppo.env.size
    width = panel_width(size, tile_size)
    counts = np.concatenate(
        [np.zeros((num_episodes, 1, num_policies), int), np.cumsum(episodes.reached, axis=1)],
        axis=1,
    )
    frames = []
    for e in range(num_episodes):
        for t in range(steps + 1):
            image = Image.new(
                "RGB", (width * num_policies, frame_height(size, tile_size)), BACKGROUND
            )
            draw = ImageDraw.Draw(image)
            header = f"{policies.title}  episode {e + 1}/{num_episodes}  step {t}/{steps}"
            draw.text((PANEL_MARGIN, 2), header, fill=TEXT, font=font)
            for p, name in enumerate(policies.names):
                left = p * width
                draw.text((left + PANEL_MARGIN, TEXT_HEIGHT + 2), name, fill=TEXT, font=font)
                grid = render(episodes.state(e, t, p), tile_size=tile_size)
                image.paste(Image.fromarray(grid), (left + PANEL_MARGIN, 2 * TEXT_HEIGHT))
                new = t > 0 and bool(episodes.reached[e, t - 1, p])
                draw.text(
                    (left + PANEL_MARGIN, 2 * TEXT_HEIGHT + size * tile_size + 2),
                    f"{policies.counted}: {counts[e, t, p]}",
                    fill=FLASH if new else TEXT,
                    font=font,
                )
            frames.append(image)
    return frames


def gif_bytes(frames: Sequence, duration_ms: int = FRAME_MS) -> bytes:
    """An endlessly looping GIF of the RGB images `frames`."""
    buffer = io.BytesIO()
    frames[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=list(frames[1:]),
        duration=duration_ms,
        loop=0,
    )
    return buffer.getvalue()


# --------------------------------------------------------------------------- run directories


def _read_config(directory: Path) -> dict:
    path = directory / "config.json"
    if not path.is_file():
        raise ValueError(f"{directory} is not a run directory: it has no config.json")
    config = read_json_object(path)
    if "experiment" not in config:
        raise ValueError(f"{path} does not name an experiment")
    return config


def _seed(config: dict, seed_index: int, directory: Path) -> int:
    seeds = config.get("seed_list")
    if not isinstance(seeds, list) or not seeds:
        raise ValueError(f"{directory}/config.json has no seed_list")
    if not 0 <= seed_index < len(seeds):
        raise ValueError(
            f"seed index {seed_index} is out of range: {directory} has {len(seeds)} seeds "
            f"(indices 0..{len(seeds) - 1})"
        )
    return int(seeds[seed_index])


def _entry(checkpoints: dict, name: str, path: Path):
    try:
        return checkpoints["policy"][name]
    except (KeyError, TypeError):
        raise ValueError(f"{path} has no policy {name!r}") from None


def policy_sets(directory: Path, seed_index: int) -> list[PolicySet]:
    """The policy sets of one experiment's run directory, for the seed at `seed_index`: what
    its protocol renders (`Protocol.render_world`, `render_panels`, `render_label`) of what it
    saved (`Protocol.saved_policies`)."""
    from internalize.envs.boulder import BoulderEnv
    from internalize.experiments.configs import resolve_config
    from internalize.learners.ppo import PPO

    config = _read_config(directory)
    experiment = config["experiment"]
    if experiment not in EXPERIMENTS:
        raise ValueError(f"{directory} is a {experiment!r} run, which saves no policies to render")
    seed = _seed(config, seed_index, directory)
    path = directory / CHECKPOINTS_FILE
    checkpoints = load_checkpoints(directory)
    # The run's own settings (its PPO network, whatever preset or --set gave it).
    ppo_config = resolve_config(experiment, directory / "config.json").ppo
    protocol = registry.get(experiment).protocol_class()
    try:
        env, tasks = protocol.render_world(config)
        saved = protocol.saved_policies(config)
        panels = {task: protocol.render_panels(config, task) for task in tasks}
    except KeyError as error:
        raise ValueError(f"{directory}/config.json lacks the setting {error}") from None
    template = params_template(PPO(ppo_config, env, next(iter(tasks.values()))))

    def pick(title: str, name: str):
        if name not in saved:
            raise ValueError(f"{directory}/config.json lists no condition {name!r}")
        entry, prefix, offset = saved[name]
        index = (*prefix, offset + seed_index)
        return pick_params(
            _entry(checkpoints, entry, path), index, template, f"{path}: policy {title}"
        )

    sets = []
    for task, env_params in tasks.items():
        stem, title = protocol.render_label(experiment, config, task)
        params = [pick(title, name) for title, name in panels[task]]
        sets.append(
            PolicySet(
                stem=stem,
                title=f"{title} (seed {seed})",
                names=tuple(title for title, _ in panels[task]),
                params=jax.tree.map(lambda *leaves: np.stack(leaves), *params),
                ppo=PPO(ppo_config, env, env_params),
                counted="partner arrivals" if isinstance(env, BoulderEnv) else "goals",
            )
        )
    return sets


def _experiment_dirs(run_dir: Path) -> list[Path]:
    """The experiment directories of a run: itself, or an `all` run's subdirectories."""
    config = _read_config(run_dir)
    if config["experiment"] != "all":
        return [run_dir]
    return [
        run_dir / name
        for name in config.get("experiments", EXPERIMENTS)
        if (run_dir / name / "config.json").is_file()
    ]


def render_run(
    run_dir: str | Path,
    seed_index: int = 0,
    episodes: int = 2,
    out: str | Path | None = None,
) -> dict:
    """Write a GIF per policy set of the run at `run_dir` (one experiment or an `all` run).

    GIFs go to `out`, or by default to each experiment's `render/` folder. Returns
    {"files": [paths written], "skipped": {experiment: why}}. Raises ValueError naming the
    problem: not a run directory, no checkpoints, unreadable or mismatched checkpoints, a seed
    index out of range.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    if seed_index < 0:
        raise ValueError(f"seed index must be non-negative, got {seed_index}")
    from internalize.teach import replay_directory

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"{run_dir} is not a run directory: no such directory")
    run_dir = replay_directory(run_dir)
    directories = _experiment_dirs(run_dir)
    single = directories == [run_dir]
    skipped, sets = {}, []
    for directory in directories:
        experiment = _read_config(directory)["experiment"]
        if not single and experiment not in EXPERIMENTS:
            skipped[directory.name] = "no policies to render"
            continue
        if not single and not (directory / CHECKPOINTS_FILE).is_file():
            skipped[directory.name] = "no checkpoints"
            continue
        sets += [(directory, s) for s in policy_sets(directory, seed_index)]
    if not sets:
        raise ValueError(f"{run_dir}: no experiment of the run has checkpoints to render")
    files = []
    for directory, policies in sets:
        seed = _read_config(directory)["seed_list"][seed_index]
        played = play(policies, jax.random.key(seed), episodes)
        folder = Path(out) if out is not None else directory / RENDER_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{policies.stem}.gif"
        atomic_write(path, gif_bytes(draw_frames(policies, played)))
        files.append(str(path))
    return {"run_dir": str(run_dir), "seed_index": seed_index, "files": files, "skipped": skipped}
