"""A teaching session: a person's approvals fitted into an ISR that trains a learner.

The person watches one environment, where the learner acts with its current policy, and
approves or disapproves of what they see. Each label is credited to the last `credit_steps`
transitions shown (the one on screen when the key was pressed and those just before: human
reaction delay) and becomes their target, `+approval` or `-approval` (a later label of the same
transition replaces an earlier one); every other transition shown while the person watched is a
0, as the paper's caregiver is silent on most steps. The ISR (`isr.model.ISRNetwork`) is refitted
on those data as labels arrive, and many hidden environments train the learner (PPO) on
`R_e + R_i`: the environment's own reward (the step cost) plus the ISR's, never the world's
scripted social reward, so the learner knows the person's rule only through the person. The
learner starts learning with the first label. `leave` freezes the ISR (the person is gone: it
alone rewards from then on), `come_back` lets labels in again, `pause` stops both the view and
the training.

Everything that changes the learner is a record in the run directory's append-only log
(`log.jsonl`), in the order it happened: each shown transition, each label (with its time, the
state, the action and the transitions it credited; flushed to disk before it is acknowledged),
each refit, each block of updates (with the ISR version it used), leaving and coming back. The
learner is a deterministic function of the seed and those records: `Teacher.apply` replays
them, so `teach --resume` rebuilds a killed session from its last checkpoint, and `teach
--replay` retrains the ISR and the learner from the log with no person present (for the live
session's seed, the same numbers as the live learner, on the same machine).
"""

import base64
import json
import math
import os
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from internalize.envs.base import move_key
from internalize.experiments.common import atomic_write
from internalize.learners.ppo import PPO, PRESETS, PPOConfig
from internalize.settings import replace_settings
from internalize.social.caregiver import constant_presence
from internalize.social.rewards import ISRReward, LearnerReward
from internalize.teach.worlds import WORLDS, reward_map

LOG_FILE = "log.jsonl"
SESSION_FILE = "session.json"
CHECKPOINT_FOLDER = "checkpoints"


@dataclass(frozen=True)
class TeachConfig:
    """How a teaching session runs (`internalize teach --set KEY=VALUE`)."""

    world: str = "goals"
    """`goals` or `boulder` (`teach.worlds.WORLDS`)."""
    preset: str = "fast"
    """The learner's PPO preset (`ppo` unset)."""
    ppo: PPOConfig | None = None
    """The learner's PPO settings; unset: those of `preset`."""
    seed: int = 0
    """Seeds the learner, the ISR and the environments."""
    n_blocks: int = 3
    """Random wall blocks per layout of the goals world."""
    approval: float = 0.4
    """The target of an approved transition (a disapproved one: minus this); the paper's
    caregiver pays 0.4 for a goal."""
    credit_steps: int = 2
    """Transitions a label credits: the one on screen when it was given and those just before
    (at the default 3 steps per second, 2 cover a reaction of up to about 0.7 s)."""
    stale_steps: int = 100
    """A label for a transition shown this many steps ago or more is refused (a label from a
    tab that lost its connection long ago)."""
    steps_per_second: float = 3.0
    """The shown environment's pace at the start (the page's speed control changes it)."""
    isr_batch_size: int = 64
    """Samples per ISR Adam step; the three kinds (approved, disapproved, silent) are drawn
    with equal probability, those present."""
    isr_steps: int = 200
    """Adam steps per refit (each refit continues from the last ISR)."""
    isr_learning_rate: float = 1e-3
    """The ISR's Adam step size."""
    updates_per_block: int = 2
    """PPO updates per background call (the log has one record per block)."""
    updates_per_label: int = 4
    """While the person is there, the learner trains this many updates per label given (so
    it never runs far ahead of what it was taught, and goes on acting as it did while the
    person judges it)."""
    updates_alone: int = 200
    """Updates the learner trains after each leaving, on the ISR alone; then it waits."""
    capacity: int = 32_768
    """Shown transitions the ISR's data hold; beyond, the oldest are overwritten."""
    checkpoint_updates: int = 50
    """The learner is saved every this many updates (what `--resume` starts from)."""
    eval_episodes: int = 256
    """Episodes per learner in the replay's evaluation."""

    def __post_init__(self) -> None:
        if self.world not in WORLDS:
            raise ValueError(f"unknown world {self.world!r}; known: {sorted(WORLDS)}")
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; known: {sorted(PRESETS)}")
        if self.ppo is None:
            object.__setattr__(self, "ppo", PRESETS[self.preset])
        for name in (
            "credit_steps",
            "stale_steps",
            "isr_batch_size",
            "isr_steps",
            "updates_per_block",
            "updates_per_label",
            "updates_alone",
            "capacity",
            "checkpoint_updates",
            "eval_episodes",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("approval", "steps_per_second", "isr_learning_rate"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.stale_steps < self.credit_steps:
            raise ValueError("stale_steps must be at least credit_steps")

    def replace(self, **changes: Any) -> "TeachConfig":
        return replace_settings(self, "teach", changes)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TeachConfig":
        data = dict(data)
        if isinstance(data.get("ppo"), dict):
            ppo = dict(data["ppo"])
            ppo["head_widths"] = tuple(ppo.get("head_widths", ()))
            data["ppo"] = PPOConfig(**ppo)
        return cls(**data)


# --------------------------------------------------------------------------------- the log


class Log:
    """The append-only log: one JSON object per line, flushed per record; `sync` also waits for
    the disk (a label is acknowledged only once it is there)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (held open)

    def append(self, record: dict, sync: bool = False) -> None:
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._file.flush()
        if sync:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()


def read_log(path: Path) -> list[dict]:
    """The records of a log. A last line cut short (the server killed while writing it) is
    dropped with a warning; any other unreadable line is a ValueError naming it."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path} does not exist: not a teaching session's directory")
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    records = []
    for number, line in enumerate(lines, 1):
        if not line:
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or "kind" not in record:
                raise ValueError("not a record")
        except ValueError as error:
            if number == len(lines):  # the last line, without its newline: cut short
                warnings.warn(
                    f"{path}: dropped a last line cut short ({len(line)} bytes)", stacklevel=2
                )
                continue
            raise ValueError(f"{path}, line {number}: not a log record ({error})") from None
        records.append(record)
    return records


def encode_obs(obs: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(obs, np.uint8).tobytes()).decode()


def decode_obs(text: str, shape: tuple[int, ...]) -> np.ndarray:
    data = np.frombuffer(base64.b64decode(text), np.uint8)
    if data.size != math.prod(shape):
        raise ValueError(f"an observation of {data.size} bytes where {shape} is expected")
    return data.reshape(shape)


# ----------------------------------------------------------------------------- computations


def class_weights(target: jax.Array, mask: jax.Array) -> jax.Array:
    """float32[N] sampling probabilities: approved (> 0), disapproved (< 0) and silent (0)
    samples of `mask` get equal shares of the mass, among the kinds present."""
    kinds = [(target > 0) & mask, (target < 0) & mask, (target == 0) & mask]
    counts = [k.sum() for k in kinds]
    present = sum((c > 0).astype(jnp.float32) for c in counts)
    weights = sum(
        jnp.where(k, 1.0 / jnp.maximum(c, 1), 0.0) for k, c in zip(kinds, counts, strict=True)
    )
    return weights / jnp.maximum(present, 1.0)


class Programs:
    """The compiled pieces of a session, shared by the live session and its replays: a shown
    step, an ISR refit, a block of PPO updates, the reward map."""

    def __init__(self, config: TeachConfig) -> None:
        self.config = config
        self.world = WORLDS[config.world]
        env = self.world.make_env()
        settings = {"n_blocks": config.n_blocks} if config.world == "goals" else {}
        self.env, self.env_params = env, env.make_params(**settings)
        self.ppo = PPO(config.ppo, env, self.env_params)
        from internalize.isr.model import ISRNetwork

        self.network = ISRNetwork(agent_cells=self.world.agent_cells)
        self.optimiser = optax.chain(
            optax.clip_by_global_norm(1.0), optax.adam(config.isr_learning_rate, eps=1e-5)
        )
        self.show = jax.jit(self._show)
        self.fit = jax.jit(self._fit)
        self.block = jax.jit(self._block)
        self.map = jax.jit(self._map)

    def isr_init(self, key: jax.Array) -> tuple[Any, Any]:
        obs = jnp.zeros((1, *self.env.obs_shape), jnp.uint8)
        action = jnp.zeros((1,), jnp.int32)
        params = self.network.init(key, obs, action, action if self.world.partner else None)
        return params, self.optimiser.init(params)

    def _show(self, policy_params, state, key):
        """One step of the shown environment: the learner's sampled action; returns the
        observation it acted on, the action, the state after the move (before any fresh
        layout: what the page shows), the next state, and the transition."""
        env = self.env
        key_action, key_layout, key_reset = jax.random.split(key, 3)
        obs = env.observe(state)
        logits, _ = self.ppo.policy(policy_params, obs[None])
        action = jax.random.categorical(key_action, logits[0])
        moved, transition = env.move(state, action, self.env_params, key=move_key(key_layout))
        following, transition = env.settle(key_layout, moved, transition, self.env_params, False)
        following = jax.lax.cond(
            transition.truncated,
            lambda: env.reset(key_reset, self.env_params),
            lambda: following,
        )
        return obs, action, moved, following, transition

    def _fit(self, params, opt_state, key, obs, action, partner, target, mask):
        """`isr_steps` Adam steps on the samples of `mask`, kinds balanced (`class_weights`)."""
        config, network = self.config, self.network
        cdf = jnp.cumsum(class_weights(target, mask))
        cdf = cdf / jnp.maximum(cdf[-1], 1e-30)
        last = target.shape[0] - 1

        def step(carry, key):
            params, opt_state = carry
            drawn = jax.random.uniform(key, (config.isr_batch_size,))
            index = jnp.minimum(jnp.searchsorted(cdf, drawn, "right"), last)

            def loss(params):
                picked = None if partner is None else partner[index]
                predicted = network.apply(params, obs[index], action[index], picked)
                return ((predicted - target[index]) ** 2).mean()

            updates, opt_state = self.optimiser.update(jax.grad(loss)(params), opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        keys = jax.random.split(key, config.isr_steps)
        (params, opt_state), _ = jax.lax.scan(step, (params, opt_state), keys)
        return params, opt_state

    def rewards(self, isr_params, weight) -> LearnerReward:
        """`R_e + weight * R_i`: the caregiver never present (P = 0), its reward unseen."""
        return LearnerReward(
            presence=constant_presence(0.0),
            internal_weight=jnp.asarray(weight, jnp.float32),
            internal=ISRReward(isr_params, self.network),
        )

    def _block(self, runner, isr_params, weight):
        def one(runner, _):
            runner, metrics, _ = self.ppo.update(runner, self.rewards(isr_params, weight))
            return runner, metrics

        return jax.lax.scan(one, runner, None, length=self.config.updates_per_block)

    def _map(self, isr_params, state, weight):
        return reward_map(self.world, self.env, self.network, isr_params, state, weight)


# ------------------------------------------------------------------------------ the teacher


@dataclass
class Buffers:
    """The ISR's data: the shown transitions the person watched, and their targets."""

    obs: np.ndarray
    action: np.ndarray
    partner: np.ndarray | None
    target: np.ndarray
    mask: np.ndarray
    written: int = 0
    """Transitions ever written (slot = written % capacity)."""
    slot_of: dict = field(default_factory=dict)
    """Shown step -> the `written` index it got (recent steps only)."""

    def snapshot(self) -> tuple:
        partner = None if self.partner is None else self.partner.copy()
        return self.obs.copy(), self.action.copy(), partner, self.target.copy(), self.mask.copy()


class Teacher:
    """The session's state machine: what the log's records do, in order (`apply`).

    The live session builds each record, logs it and applies it; a replay applies a log's
    records. With `compute=False` the records only rebuild the data and flags (labels, the
    ISR's data), not the ISR or the learner (`teach --resume` before its checkpoint)."""

    def __init__(self, config: TeachConfig, programs: Programs | None = None) -> None:
        self.config = config
        self.programs = programs or Programs(config)
        env, capacity = self.programs.env, config.capacity
        self.buffers = Buffers(
            obs=np.zeros((capacity, *env.obs_shape), np.uint8),
            action=np.zeros(capacity, np.int32),
            partner=np.zeros(capacity, np.int32) if self.programs.world.partner else None,
            target=np.zeros(capacity, np.float32),
            mask=np.zeros(capacity, bool),
        )
        key = jax.random.key(config.seed)
        self.keys = {
            name: jax.random.fold_in(key, i)
            for i, name in enumerate(("learner", "isr", "fit", "show"))
        }
        self.isr_params, self.isr_opt = self.programs.isr_init(self.keys["isr"])
        ppo = self.programs.ppo
        rewards = self.programs.rewards(self.isr_params, 1.0)
        self.runner = ppo.start_caregiver(ppo.init(self.keys["learner"]), rewards)
        self.version = 0
        """ISR refits so far (0: none; the learner does not train before the first)."""
        self.updates = 0
        self.shown = 0
        """Transitions shown (the last one's step number)."""
        self.labels = 0
        self.approvals = 0
        self.present = True
        self.label_ids: set[str] = set()
        self.labelled: dict[int, int] = {}
        """Step -> the value of its latest label: the same label again (another tab) counts
        once, a different one is a correction."""
        self.history: list[dict] = []
        """Per block: updates so far and the learner's metrics (goals per episode, ...)."""

    # ---------------------------------------------------------------------------- records

    def apply(self, record: dict, compute: bool = True) -> None:
        kind = record["kind"]
        if kind == "shown":
            self._shown(record)
        elif kind == "label":
            self._label(record)
        elif kind == "refit":
            self._refit(record, compute)
        elif kind == "updates":
            self._updates(record, compute)
        elif kind in ("leave", "come_back"):
            self.present = kind == "come_back"
        elif kind in ("pause", "resume", "checkpoint", "start", "speed"):
            pass
        else:
            raise ValueError(f"unknown log record kind {kind!r}")

    def _shown(self, record: dict) -> None:
        step = record["step"]
        if step != self.shown + 1:
            raise ValueError(f"shown step {step} out of order (after {self.shown})")
        self.shown = step
        if not record["present"]:
            return
        b, slot = self.buffers, self.buffers.written % self.config.capacity
        b.obs[slot] = decode_obs(record["obs"], self.programs.env.obs_shape)
        b.action[slot] = record["action"]
        if b.partner is not None:
            b.partner[slot] = record["partner_action"]
        b.target[slot], b.mask[slot] = 0.0, True
        b.slot_of[step] = b.written
        b.written += 1
        b.slot_of.pop(step - self.config.stale_steps - self.config.credit_steps, None)

    def _slot(self, step: int) -> int | None:
        """Where shown step `step` is in the data (None: not watched, or overwritten since)."""
        index = self.buffers.slot_of.get(step)
        if index is None or self.buffers.written - index > self.config.capacity:
            return None
        return index % self.config.capacity

    def credited(self, step: int) -> list[int]:
        """The shown steps a label of `step` credits that are still in the data."""
        first = step - self.config.credit_steps + 1
        return [s for s in range(first, step + 1) if self._slot(s) is not None]

    def _label(self, record: dict) -> None:
        value = float(record["value"]) * self.config.approval
        for step in record["credited"]:
            slot = self._slot(step)
            if slot is not None:
                self.buffers.target[slot] = value
        self.labels += 1
        self.approvals += record["value"] > 0
        self.label_ids.add(record["id"])
        self.labelled[record["step"]] = record["value"]

    def _refit(self, record: dict, compute: bool) -> None:
        if record["version"] != self.version + 1:
            raise ValueError(f"refit {record['version']} out of order (after {self.version})")
        if compute:
            self.fit(self.buffers.snapshot(), record["version"])
        self.version = record["version"]

    def fit(self, data: tuple, version: int) -> None:
        p = self.programs
        key = jax.random.fold_in(self.keys["fit"], version)
        self.isr_params, self.isr_opt = p.fit(self.isr_params, self.isr_opt, key, *data)

    def _updates(self, record: dict, compute: bool) -> None:
        if record["version"] != self.version:
            raise ValueError(
                f"a block of updates with ISR {record['version']} where ISR {self.version} is "
                "the latest: the log is inconsistent"
            )
        if compute:
            self.train_block()
        else:
            self.updates += self.config.updates_per_block

    def train_block(self) -> None:
        """`updates_per_block` PPO updates on `R_e + R_i` with the current ISR."""
        self.runner, metrics = self.programs.block(self.runner, self.isr_params, 1.0)
        self.updates += self.config.updates_per_block
        self.history.append(
            {
                "updates": self.updates,
                "steps": int(self.runner.step),
                "goals_per_episode": float(np.mean(metrics.goals_per_episode)),
                "internal_reward": float(np.mean(metrics.internal_reward)),
                "env_reward": float(np.mean(metrics.env_reward)),
            }
        )

    # ------------------------------------------------------------------------ checkpoints

    def state_tree(self) -> dict:
        """What a checkpoint holds (the runner's key as its raw data)."""
        return {
            "runner": self.runner.replace(key=jax.random.key_data(self.runner.key)),
            "isr_params": self.isr_params,
            "isr_opt": self.isr_opt,
            "version": self.version,
            "updates": self.updates,
        }

    def save(self, folder: Path) -> Path:
        from flax import serialization

        folder.mkdir(exist_ok=True)
        path = folder / f"learner-{self.updates}.msgpack"
        tree = jax.tree.map(np.asarray, serialization.to_state_dict(self.state_tree()))
        atomic_write(path, serialization.msgpack_serialize(tree))
        for old in sorted(folder.glob("learner-*.msgpack"), key=_updates_of)[:-2]:
            old.unlink(missing_ok=True)  # keep the last two
        return path

    def load(self, path: Path) -> None:
        from flax import serialization

        try:
            tree = serialization.msgpack_restore(path.read_bytes())
            state = serialization.from_state_dict(self.state_tree(), tree)
        except Exception as error:  # msgpack raises several unrelated types on corrupt input
            raise ValueError(f"{path} is not a readable checkpoint ({error})") from None
        self.runner = state["runner"].replace(key=jax.random.wrap_key_data(state["runner"].key))
        self.isr_params, self.isr_opt = state["isr_params"], state["isr_opt"]
        if int(state["version"]) != self.version or int(state["updates"]) != self.updates:
            raise ValueError(f"{path} does not match the log (version, updates)")


def _updates_of(path: Path) -> int:
    try:
        return int(path.stem.split("-")[1])
    except (IndexError, ValueError):
        return -1


def restore(config: TeachConfig, records: list[dict], folder: Path, programs=None) -> Teacher:
    """The teacher of a log: from the last checkpoint the log names and `folder` holds, the
    records after it replayed; without one, every record replayed."""
    teacher = Teacher(config, programs)
    start = 0
    for index in range(len(records) - 1, -1, -1):
        record = records[index]
        if record["kind"] == "checkpoint" and (folder / record["file"]).is_file():
            start = index
            break
    if start:
        for record in records[:start]:
            teacher.apply(record, compute=False)
        teacher.load(folder / records[start]["file"])
        # The ISR data and flags are those of the checkpoint's time: go on from there.
    for record in records[start:]:
        teacher.apply(record)
    return teacher


def replay_log(config: TeachConfig, records: list[dict], seed: int, programs=None) -> Teacher:
    """A fresh learner and ISR of seed `seed` through every record of a log."""
    teacher = Teacher(config.replace(seed=seed), programs)
    for record in records:
        teacher.apply(record)
    return teacher


# ------------------------------------------------------------------------ the live session


class Refused(ValueError):
    """A message the session will not act on; the reason goes back to the page and the log."""


class LiveSession:
    """A teaching session being served: the shown environment, labels from the page, and a
    background thread that refits the ISR and trains the learner. Thread-safe."""

    def __init__(self, directory: Path, config: TeachConfig, token: str, resume: bool) -> None:
        self.directory, self.config, self.token = Path(directory), config, token
        self.lock = threading.RLock()
        records = read_log(self.directory / LOG_FILE) if resume else []
        self.teacher = restore(config, records, self.directory / CHECKPOINT_FOLDER)
        self.programs = self.teacher.programs
        self.log = Log(self.directory / LOG_FILE)
        if not resume:
            self.log.append({"kind": "start", "time": time.time(), "seed": config.seed}, sync=True)
        self.paused = False
        self.speed = config.steps_per_second
        self.policy_params = self.teacher.runner.train.params
        show_key = self.teacher.keys["show"]
        self.show_key = jax.random.fold_in(show_key, len(records))  # another stream per start
        self.state = self.programs.env.reset(
            jax.random.fold_in(self.show_key, 0), self.programs.env_params
        )
        self.frames: dict[int, dict] = {}
        """Recent shown steps -> their frame (what a label records of the state)."""
        self.episode, self.episode_events, self.episode_events_history = 1, 0, []
        self.labels_at_fit = self.teacher.labels if self.teacher.version else 0
        self.budget = self._budget(records)
        """Updates the learner may still train (`updates_per_label`, `updates_alone`)."""
        self.last_checkpoint = self.teacher.updates
        self.refitted_last = False
        self.stopping = threading.Event()
        self.trainer = threading.Thread(target=self._train, name="teach-trainer", daemon=True)
        self.error: BaseException | None = None

    # --------------------------------------------------------------------------- the view

    def show(self) -> dict:
        """Advance the shown environment one step; returns the frame for the page."""
        p = self.programs
        with self.lock:
            step = self.teacher.shown + 1
            key = jax.random.fold_in(self.show_key, step)
            obs, action, moved, following, transition = p.show(self.policy_params, self.state, key)
            obs, moved = np.asarray(obs), jax.tree.map(np.asarray, moved)
            event = bool(transition.goal_reached)
            record = {
                "kind": "shown",
                "step": step,
                "time": time.time(),
                "present": self.present,
                "obs": encode_obs(obs),
                "action": int(action),
                "event": event,
            }
            if p.world.partner:
                record["partner_action"] = int(transition.partner_action)
            self.log.append(record)
            self.teacher.apply(record)
            self.state = following
            frame = {
                "type": "frame",
                "step": step,
                "episode": self.episode,
                "t": int(moved.time),
                "action": int(action),
                "event": event,
                "present": self.present,
                "state": p.world.picture(moved),
            }
            self.frames[step] = frame
            self.frames.pop(step - self.config.stale_steps, None)
            self.episode_events += event
            if bool(transition.truncated):
                self.episode_events_history.append(self.episode_events)
                self.episode, self.episode_events = self.episode + 1, 0
            return frame

    @property
    def present(self) -> bool:
        return self.teacher.present

    # ---------------------------------------------------------------------------- labels

    def label(self, label_id: str, step: int, value: int, client_time: float) -> dict:
        """Record a label, flushed to disk, and return its acknowledgement; `Refused` says
        why a label is not taken."""
        with self.lock:
            teacher = self.teacher
            if label_id in teacher.label_ids:
                return {"type": "ack", "id": label_id, "duplicate": True, **self.counts()}
            if not self.present:
                raise Refused("the caregiver has left: come back to label")
            if step > teacher.shown:
                raise Refused(
                    f"step {step} has not been shown yet (the last shown is {teacher.shown})"
                )
            if step <= teacher.shown - self.config.stale_steps:
                raise Refused(
                    f"step {step} is stale: labels must come within {self.config.stale_steps} "
                    f"steps of the one shown (now {teacher.shown})"
                )
            if teacher.labelled.get(step) == value:  # the same label from another tab
                return {"type": "ack", "id": label_id, "duplicate": True, **self.counts()}
            credited = teacher.credited(step)
            if step not in credited:
                raise Refused(f"step {step} was not watched (shown while the caregiver was away)")
            frame = self.frames.get(step, {})
            record = {
                "kind": "label",
                "id": label_id,
                "step": step,
                "value": value,
                "time": client_time,
                "received": time.time(),
                "credited": credited,
                "action": frame.get("action"),
                "state": frame.get("state"),
            }
            self.log.append(record, sync=True)
            teacher.apply(record)
            self.budget += self.config.updates_per_label
            return {"type": "ack", "id": label_id, "duplicate": False, **self.counts()}

    def counts(self) -> dict:
        t = self.teacher
        return {
            "labels": t.labels,
            "approvals": t.approvals,
            "disapprovals": t.labels - t.approvals,
        }

    def control(self, action: str, value: Any = None) -> None:
        with self.lock:
            if action == "pause":
                self.paused = True
            elif action == "resume":
                self.paused = False
            elif action == "leave":
                if not self.present:
                    raise Refused("the caregiver has already left")
            elif action == "come_back":
                if self.present:
                    raise Refused("the caregiver is here")
            elif action == "speed":
                self.speed = float(value)
                return
            else:
                raise Refused(f"unknown control {action!r}")
            record = {"kind": action, "time": time.time(), "updates": self.teacher.updates}
            self.log.append(record, sync=True)
            self.teacher.apply(record)
            if action == "leave":  # the learner goes on alone, then waits
                self.budget = self.config.updates_alone
            elif action == "come_back":
                self.budget = 0

    # -------------------------------------------------------------------------- training

    def start(self) -> None:
        self.trainer.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.trainer.is_alive():
            self.trainer.join()
        with self.lock:
            if self.teacher.updates != self.last_checkpoint:
                self._checkpoint()
            self.log.close()

    def _train(self) -> None:
        try:
            while not self.stopping.is_set():
                if self.paused or not self._step():
                    self.stopping.wait(0.05)
        except BaseException as error:  # noqa: BLE001 (reported by the server)
            self.error = error
            raise

    def _step(self) -> bool:
        """One refit (if new labels came while the person is here) or one block of updates,
        taking turns while there are both; False when there is nothing to do."""
        teacher = self.teacher
        with self.lock:
            can_train = teacher.version > 0 and self.budget >= self.config.updates_per_block
            refit = self.present and teacher.labels > self.labels_at_fit
            refit &= not (can_train and self.refitted_last)
            if refit:
                version = teacher.version + 1
                data = teacher.buffers.snapshot()
                record = {
                    "kind": "refit",
                    "version": version,
                    "labels": teacher.labels,
                    "time": time.time(),
                }
                self.log.append(record)
                self.labels_at_fit = teacher.labels
        self.refitted_last = refit
        if refit:
            teacher.fit(data, version)  # outside the lock: the view and labels go on
            with self.lock:
                teacher.version = version
            return True
        if not can_train:
            return False
        version = teacher.version
        teacher.train_block()
        with self.lock:
            self.log.append({"kind": "updates", "version": version, "time": time.time()})
            self.budget -= self.config.updates_per_block
            self.policy_params = teacher.runner.train.params
            if teacher.updates - self.last_checkpoint >= self.config.checkpoint_updates:
                self._checkpoint()
        return True

    def _budget(self, records: list[dict]) -> int:
        """The updates a restored session may still train: those its labels and leavings
        earned, less those it trained."""
        config, earned = self.config, 0
        for record in records:
            if record["kind"] == "label":
                earned += config.updates_per_label
            elif record["kind"] == "leave":
                earned += config.updates_alone
        return max(earned - self.teacher.updates, 0)

    def _checkpoint(self) -> None:
        path = self.teacher.save(self.directory / CHECKPOINT_FOLDER)
        self.log.append(
            {"kind": "checkpoint", "file": path.name, "updates": self.teacher.updates}, sync=True
        )
        self.last_checkpoint = self.teacher.updates

    # --------------------------------------------------------------------------- the page

    def reward_map(self) -> dict:
        with self.lock:
            state, params, version = self.state, self.teacher.isr_params, self.teacher.version
        values = np.asarray(self.programs.map(params, state, float(version > 0)))
        return {"type": "map", "version": version, "values": np.round(values, 4).tolist()}

    def status(self) -> dict:
        with self.lock:
            t = self.teacher
            recent = t.history[-1] if t.history else {}
            return {
                "type": "status",
                "present": self.present,
                "paused": self.paused,
                "speed": self.speed,
                "shown": t.shown,
                "episode": self.episode,
                "updates": t.updates,
                "learner_steps": recent.get("steps", 0),
                "isr_version": t.version,
                "learner_events_per_episode": recent.get("goals_per_episode"),
                "shown_events_per_episode": self.episode_events_history[-20:],
                "credit_steps": self.config.credit_steps,
                **self.counts(),
            }
