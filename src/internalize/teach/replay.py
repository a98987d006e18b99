"""`internalize teach --replay SESSION`: a teaching session's learner, retrained from its log.

Per seed, the ISR and the learner go through every record of the session's log again, with no
person present (`session.replay_log`): the person's labels on the transitions they watched,
each refit of the ISR at the point it happened, each block of updates with the ISR it used,
leaving and coming back. The session's own seed gives the live learner's numbers (bit for bit
on the machine that ran the session); other seeds ask whether the person's values would have
come across to other learners from the same feedback. Beside each taught learner, an untaught
one of the same seed trains as many updates on the environment's reward alone (the learner
that never had this caregiver).

Both are evaluated on `eval_episodes` fresh episodes (sampled actions): the world's events per
episode (goals reached; the partner's arrivals), forward moves per episode, and the ISR's
reward per episode: how well each serves the person's values as the ISR learned them. The run
directory is an ordinary one (config.json, metrics.csv, results.json last, the policies in
checkpoints.msgpack): `report` and `render` read it. A rule of one's own is measured on the
saved policies (`internalize.render.play`), as tests/teach/test_browser.py does.
"""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from internalize.envs.base import step_batch
from internalize.experiments.common import ExperimentConfig, read_json_object
from internalize.experiments.compiled import Timing
from internalize.experiments.runner import Protocol, Run
from internalize.social.rewards import ISRReward
from internalize.stats import paired_test, summarize
from internalize.teach.session import (
    LOG_FILE,
    SESSION_FILE,
    Programs,
    TeachConfig,
    Teacher,
    read_log,
)


@dataclass(frozen=True)
class TeachReplayConfig(ExperimentConfig):
    """Settings of a replay (`internalize teach --replay`). The learner and the ISR are built
    as the session's own settings (its session.json) say; `teach --replay` sets `preset`, `ppo`
    and `first_seed` to the session's, so that config.json tells what ran."""

    session: str = ""
    """The teaching session's directory (with session.json and log.jsonl)."""
    seeds: int = 1
    """Learners retrained (seeds first_seed, first_seed + 1, ...); the session's own seed
    gives its live learner's numbers."""
    first_seed: int = 0


def load_session(directory: str | Path) -> tuple[TeachConfig, list[dict]]:
    """A teaching session's settings and log records; ValueError names what is missing."""
    if not str(directory):
        raise ValueError(
            "the replay needs a teaching session's directory: --set session=DIR, or "
            "`internalize teach --replay DIR`"
        )
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"{directory} is not a teaching session's directory (no such directory)")
    data = read_json_object(directory / SESSION_FILE)
    try:
        config = TeachConfig.from_dict(data["config"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"{directory / SESSION_FILE} holds no valid teach config: {error}"
        ) from None
    records = read_log(directory / LOG_FILE)
    if not any(record["kind"] == "label" for record in records):
        raise ValueError(f"{directory / LOG_FILE} holds no label: nothing was taught")
    return config, records


class TeachReplay(Protocol):
    def __init__(self, name: str, config: TeachReplayConfig) -> None:
        self.session_config, self.records = load_session(config.session)
        if config.ppo != self.session_config.ppo:
            raise ValueError(
                "the replay's ppo settings differ from the session's (session.json): a replay "
                "retrains the session's own learner"
            )
        super().__init__(name, config)
        self.blocks = sum(record["kind"] == "updates" for record in self.records)
        self.programs = Programs(self.session_config)
        self.evaluator = make_evaluator(self.programs, self.session_config.eval_episodes)

    RENDERED = ("untaught", "taught")

    @classmethod
    def render_world(cls, config: dict) -> tuple[Any, dict]:
        """The teaching session's world."""
        from internalize.envs.boulder import BoulderEnv
        from internalize.envs.goals import GoalsEnv

        boulder = config["world"] == "boulder"
        env = BoulderEnv() if boulder else GoalsEnv()
        settings = {} if boulder else {"n_blocks": config["n_blocks"]}
        max_steps = config.get("env", {}).get("max_steps")
        return env, {None: env.make_params(max_steps=max_steps, **settings)}

    def describe(self) -> dict:
        session = self.session_config
        return {
            "teach": session.as_dict(),
            "world": session.world,
            "env": {"max_steps": int(self.programs.env_params.max_steps)},
            "conditions": ["untaught", "taught"],
            "blocks": self.blocks,
            "labels": sum(record["kind"] == "label" for record in self.records),
            "n_blocks": session.n_blocks,
        }

    def planned_steps(self) -> int:
        session = self.session_config
        per_block = session.updates_per_block * session.ppo.batch_size
        return 2 * len(self.config.seed_list) * self.blocks * per_block

    def phases(self, run: Run):
        p, session = self.programs, self.session_config
        taught, untaught = [], []
        started = time.perf_counter()
        run.progress.phase("replaying the session")
        per_block = session.updates_per_block * session.ppo.batch_size
        for seed in run.seeds:
            teacher = Teacher(session.replace(seed=seed), p)
            for record in self.records:
                teacher.apply(record)
                if record["kind"] == "updates":
                    run.progress.advance(per_block)
            taught.append(teacher)
            alone = Teacher(session.replace(seed=seed), p)  # the same start, never taught
            for _ in range(self.blocks):
                alone.runner, _ = p.block(alone.runner, alone.isr_params, 0.0)
                alone.updates += session.updates_per_block
                run.progress.advance(per_block)
            untaught.append(alone)
        steps = 2 * len(run.seeds) * self.blocks * per_block
        run.timings["replay"] = Timing(run_s=time.perf_counter() - started, steps=steps).as_dict()
        run.progress.phase("evaluating")
        evaluations = {
            name: [
                self.evaluate(t.runner.train.params, teacher.isr_params, seed)
                for t, teacher, seed in zip(group, taught, run.seeds, strict=True)
            ]
            for name, group in (("untaught", untaught), ("taught", taught))
        }
        return taught, untaught, evaluations

    def evaluate(self, params, isr_params, seed: int) -> dict:
        """Per episode: events, forward moves and the ISR's reward, float[episodes] each."""
        events, forward, isr = self.evaluator(params, isr_params, jax.random.key(seed))
        return {
            "events": np.asarray(events),
            "forward_moves": np.asarray(forward),
            "isr_reward": np.asarray(isr),
        }

    def analyse(self, outcome, run: Run) -> dict:
        taught, untaught, evaluations = outcome
        names = ("untaught", "taught")
        rows = [
            [seed, name, metric, float(values[metric].mean())]
            for name in names
            for seed, values in zip(run.seeds, evaluations[name], strict=True)
            for metric in ("events", "forward_moves", "isr_reward")
        ]
        run.write_csv("metrics.csv", ["seed", "condition", "metric", "per_episode"], rows)
        run.save_checkpoints(
            {
                "autonomy": jax.tree.map(
                    lambda *leaves: np.stack(leaves).reshape(2, len(run.seeds), *leaves[0].shape),
                    *[t.runner.train.params for t in untaught],
                    *[t.runner.train.params for t in taught],
                )
            },
            {
                "taught": jax.tree.map(
                    lambda *leaves: np.stack(leaves), *[t.isr_params for t in taught]
                )
            },
        )
        per_seed = {
            name: {
                metric: np.array([values[metric].mean() for values in evaluations[name]])
                for metric in ("events", "forward_moves", "isr_reward")
            }
            for name in names
        }
        summary = {
            name: {metric: summarize(values).as_dict() for metric, values in metrics.items()}
            for name, metrics in per_seed.items()
        }
        tests = {
            "isr_reward taught vs untaught": paired_test(
                per_seed["taught"]["isr_reward"], per_seed["untaught"]["isr_reward"]
            ).as_dict()
        }
        return {
            "summary": summary,
            "per_seed": {n: {m: v.tolist() for m, v in ms.items()} for n, ms in per_seed.items()},
            "tests": tests,
            "labels": sum(record["kind"] == "label" for record in self.records),
            "updates": int(taught[0].updates),
            "isr_refits": int(taught[0].version),
        }


def make_evaluator(programs: Programs, episodes: int):
    """A jitted `(params, isr_params, key) -> (events, forward moves, ISR reward)` per episode,
    float32[episodes] each, for `episodes` fresh episodes with sampled actions."""
    ppo, env, env_params = programs.ppo, programs.env, programs.env_params
    steps = int(env_params.max_steps)

    def evaluate(params, isr_params, key):
        key_envs, key_steps = jax.random.split(key)
        states, obs = ppo.fresh_envs(key_envs, episodes)
        isr = ISRReward(isr_params, programs.network)

        def one_step(carry, key):
            states, obs = carry
            key_action, key_step = jax.random.split(key)
            logits, _ = ppo.policy(params, obs)
            action = jax.random.categorical(key_action, logits)
            states, transition = step_batch(
                env, key_step, states, action, env_params, auto_reset=False
            )
            forward = (action == 2).astype(jnp.float32)
            return (states, transition.obs), (
                transition.goal_reached.astype(jnp.float32),
                forward,
                isr(obs, action, transition),
            )

        _, (events, forward, reward) = jax.lax.scan(
            one_step, (states, obs), jax.random.split(key_steps, steps)
        )
        return events.sum(0), forward.sum(0), reward.sum(0)

    return jax.jit(evaluate)


def replay_config(session: str | Path, seeds: int = 1, first_seed: int | None = None):
    """The replay settings of the session at `session`: its preset, PPO settings and (unless
    `first_seed` is given) its seed first."""
    config, _ = load_session(session)
    first = config.seed if first_seed is None else first_seed
    return TeachReplayConfig(
        session=str(session), preset=config.preset, ppo=config.ppo, seeds=seeds, first_seed=first
    )
