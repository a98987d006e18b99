"""The phases every experiment is built from: socialization, ISR training, autonomy.

Each phase is one jitted call over all seeds (and conditions) at once, compiled ahead so that
compile time is reported apart. Arrays carry a leading run axis.
"""

import dataclasses
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from internalize.experiments.common import Progress
from internalize.experiments.compiled import Timing, UpdateLoop, compiled_call
from internalize.experiments.sharing import fingerprint, once, store
from internalize.isr.model import ISRNetwork
from internalize.isr.train import ISRConfig, ISRDataset, ISRResult, make_isr_train
from internalize.learners.ppo import (
    PPO,
    PPOConfig,
    Runner,
    UpdateMetrics,
    isr_data,
    over_runs,
)
from internalize.social.caregiver import (
    Presence,
    ScheduleConfig,
    constant_presence,
    readiness_check,
)
from internalize.social.rewards import ISRReward, LearnerReward, caregiver_present


def socialize(
    ppo: PPO,
    keys: jax.Array,
    num_updates: int,
    progress: Progress | None = None,
    best_every: int | None = None,
) -> tuple[Runner, UpdateMetrics, ISRDataset, Timing]:
    """Train one run per key with the caregiver present throughout (P = 1).

    Returns the runners, metrics [runs, updates] and the ISR data of every step, in time order,
    as an `ISRDataset` with a leading run axis. With `best_every` (environment steps), each
    runner's learner is its best checkpoint instead of its last (`best_checkpoints`): the
    original's ood and layouts started autonomy from it (SPEC §7); the data stay every step's.
    """
    steps = int(keys.shape[0]) * num_updates * ppo.config.batch_size
    return once(
        "socialize",
        (_fields(ppo), keys, num_updates, best_every),
        lambda: _socialize(ppo, keys, num_updates, progress, Timing(steps=steps), best_every),
        progress,
        steps,
    )


def checkpoint_updates(num_updates: int, batch_size: int, every: int) -> np.ndarray:
    """bool[num_updates]: the updates at which a checkpoint is taken every `every` environment
    steps, the first update whose end reaches each multiple of `every` (SB3's callback checks
    every `every` steps; the nearest whole rollout here)."""
    if every < 1:
        raise ValueError(f"checkpoints need every >= 1 step, got {every}")
    end = np.arange(1, num_updates + 1) * batch_size
    return end // every > (end - batch_size) // every


def best_checkpoints(returns: np.ndarray, batch_size: int, every: int) -> np.ndarray:
    """int[runs]: the update (0-based) of each run's best checkpoint, the first of the highest
    `returns` (float[runs, updates], the mean return per episode of each update's rollout:
    about the last 100 episodes, as the original's callback read them) among
    `checkpoint_updates`; the last update where no checkpoint was taken."""
    returns = np.asarray(returns, np.float32)
    checks = checkpoint_updates(returns.shape[1], batch_size, every)
    if not checks.any():
        return np.full(returns.shape[0], returns.shape[1] - 1)
    return np.flatnonzero(checks)[np.argmax(returns[:, checks], axis=1)]


def _fields(instance: Any) -> list:
    return [getattr(instance, field.name) for field in dataclasses.fields(instance)]


def _socialize(
    ppo: PPO, keys: jax.Array, num_updates: int, progress, timing: Timing, best_every=None
):
    rewards = caregiver_present()

    def init(key):
        return ppo.start_caregiver(ppo.init(key), rewards)

    def body(runner, _):
        runner, metrics, rollout = ppo.update(runner, rewards)
        return runner, (metrics, isr_data(rollout))

    if best_every is None:
        loop = UpdateLoop(init, body, num_updates, ppo.config)
    else:  # carry the best checkpoint's learner beside the runner (`best_checkpoints`)
        checks = jnp.asarray(checkpoint_updates(num_updates, ppo.config.batch_size, best_every))

        def init_best(key):
            runner = init(key)
            return runner, (jnp.float32(-jnp.inf), runner.train)

        def body_best(carry, done):
            runner, (best, train) = carry
            runner, (metrics, data) = body(runner, done)
            better = checks[done - 1] & (metrics.true_return > best)
            best = jnp.where(better, metrics.true_return, best)
            train = jax.tree.map(
                lambda kept, new: jnp.where(better, new, kept), train, runner.train
            )
            return (runner, (best, train)), (metrics, data)

        loop = UpdateLoop(init_best, body_best, num_updates, ppo.config)
    carry, (metrics, (obs, action, social_reward, *partner)) = loop(
        keys,
        timing=timing,
        name="socialization",
        progress=progress,
    )
    if best_every is None:
        runners = carry
    else:
        runners, (best, train) = carry
        runners = runners.replace(
            train=jax.tree.map(
                lambda kept, last: jnp.where(
                    jnp.isfinite(best).reshape(-1, *[1] * (last.ndim - 1)), kept, last
                ),
                train,
                runners.train,
            )
        )
    dataset = _dataset(obs, action, social_reward, partner)
    return runners, metrics, dataset, timing


def _dataset(obs, action, social_reward, partner: list, observed=None) -> ISRDataset:
    """The `ISRDataset` of `isr_data` collected [runs, updates, S, E, ...] (`partner`: the
    partner's actions, or empty; `observed`: bool, the steps the caregiver saw), its steps in
    time order along one axis per run."""
    runs = obs.shape[0]
    return ISRDataset(
        obs=obs.reshape(runs, -1, *obs.shape[-3:]),
        action=action.reshape(runs, -1).astype(jnp.int32),
        social_reward=social_reward.reshape(runs, -1),
        partner_action=partner[0].reshape(runs, -1).astype(jnp.int32) if partner else None,
        observed=None if observed is None else observed.reshape(runs, -1),
    )


def train_isr(
    config: ISRConfig,
    keys: jax.Array,
    dataset: ISRDataset,
    progress: Progress | None = None,
    network: ISRNetwork | None = None,
) -> tuple[ISRResult, Timing]:
    """One ISR per run, trained on that run's socialization data (`network`: the ISR network,
    by default the one `config` describes, `ISRConfig.network`, for the single-agent task).

    Runs are trained in one call, one after another (`lax.map`) on a CPU, where vmapping gains
    little at these batch sizes (it once hung, see `PPOConfig.parallel_runs`), side by side on
    a GPU or TPU (`over_runs`).
    """

    network = network or config.network()  # so that the default and its equal share a phase

    def compute():
        timing = Timing()
        train = over_runs(make_isr_train(config, dataset.size, network))
        result = compiled_call(
            train, keys, dataset, timing=timing, name="ISR training", progress=progress
        )
        return result, timing

    return once("train_isr", (config, keys, dataset, network), compute, progress, 0)


AUTONOMY_CONDITIONS = ("oracle", "none", "isr")
PAPER_SCHEDULE = ScheduleConfig()
"""The caregiver leaves at once (SPEC §1's two phases)."""


def autonomy_settings(
    conditions: tuple[str, ...],
    switch_step: int | np.ndarray,
    runs: int,
    isr_params: Any = None,
    isr_threshold: float | None = None,
    isr_network: ISRNetwork | None = None,
    schedule: ScheduleConfig = PAPER_SCHEDULE,
    reward_form: str = "add",
) -> LearnerReward:
    """Learner rewards for `conditions` x `runs`, stacked condition-major: [C * runs].

    `switch_step`: the step at which the caregiver starts to leave, one for all runs or one
    per run (int[runs]: runs that start autonomy at different steps).

    `oracle`: the caregiver stays (P = 1); `none`: it leaves at `switch_step` as `schedule`
    says (at once by default) and nothing replaces it; `isr`: it leaves likewise and the ISR
    (`isr_network`, default SPEC §4's, with `isr_params`, leading run axis) supplies R_i, paid
    only above `isr_threshold` if that is set, in the `reward_form` (`caregiver.REWARD_FORMS`).
    Without `isr` among the conditions, `isr_params` is not needed (and not used).
    """
    unknown = [condition for condition in conditions if condition not in AUTONOMY_CONDITIONS]
    if unknown:
        raise ValueError(
            f"unknown autonomy condition(s) {unknown}; known: {list(AUTONOMY_CONDITIONS)}"
        )
    uses_isr = "isr" in conditions
    if uses_isr and isr_params is None:
        raise ValueError("the isr condition needs trained ISR parameters")
    per_run = np.ndim(switch_step) > 0
    leaving = schedule.presence(0 if per_run else switch_step)
    staying = constant_presence(1.0).replace(ready_window=leaving.ready_window)
    presences: list[Presence] = [
        staying if condition == "oracle" else leaving for condition in conditions
    ]
    presence = jax.tree.map(lambda *levels: jnp.repeat(jnp.stack(levels), runs, axis=0), *presences)
    if per_run:  # each run leaves at its own step (a schedule that never leaves stays so)
        steps = jnp.tile(jnp.asarray(switch_step, jnp.float32), len(conditions))
        never = jnp.isinf(presence.switch_step)
        presence = presence.replace(switch_step=jnp.where(never, presence.switch_step, steps))
    weights = jnp.repeat(
        jnp.asarray([condition == "isr" for condition in conditions], jnp.float32), runs
    )
    internal = None
    if uses_isr:
        count = len(conditions) * runs  # the threshold per run, so runs may differ in it
        internal = ISRReward(
            params=tile(isr_params, len(conditions)),
            network=isr_network or ISRNetwork(),
            threshold=None if isr_threshold is None else jnp.full(count, isr_threshold),
        )
    return LearnerReward(
        presence=presence, internal_weight=weights, internal=internal, form=reward_form
    )


def autonomy(
    ppo: PPO,
    runners: Runner,
    conditions: tuple[str, ...],
    isr_params: Any,
    num_updates: int,
    progress: Progress | None = None,
    env_params: Any = None,
    isr_threshold: float | None = None,
    isr_network: ISRNetwork | None = None,
    extra_metrics=None,
    schedule: ScheduleConfig = PAPER_SCHEDULE,
    distance: bool = False,
    reward_form: str = "add",
) -> tuple[Runner, UpdateMetrics, Timing]:
    """Continue every socialized run under each condition.

    Runs keep their parameters, optimiser state and environments; each condition draws its own
    random numbers. Conditions without an ISR train together in one call, the `isr` condition
    in another (so that only its runs pay for the ISR's forward passes). `env_params`, with a
    leading run axis, gives each run its own task (default: `ppo.env_params` for all); the
    runners' environments must already be of that task (`PPO.move_to_task`). `isr_threshold`,
    `isr_network` and `reward_form` make the ISR's reward and `schedule` how the caregiver leaves
    (`autonomy_settings`); `extra_metrics` goes to `PPO.run`; `distance` adds the metric
    `distance`, how far each run's policy has moved from its socialized one
    (`policy_distance`). Returns runners and metrics with leading axes [C, runs], in the order
    of `conditions`.
    """
    (outcome,) = autonomy_variants(
        ppo,
        runners,
        conditions,
        isr_params,
        num_updates,
        [(isr_threshold, schedule)],
        progress,
        env_params=env_params,
        isr_network=isr_network,
        extra_metrics=extra_metrics,
        distance=distance,
        reward_form=reward_form,
    )
    return outcome


Variant = tuple[float | None, ScheduleConfig]
"""What may differ between runs of one compiled autonomy call: the ISR threshold (None for all
variants, or a number for all) and the caregiver's schedule (of one `ready_window`)."""


def autonomy_variants(
    ppo: PPO,
    runners: Runner,
    conditions: tuple[str, ...],
    isr_params: Any,
    num_updates: int,
    variants: list[Variant],
    progress: Progress | None = None,
    *,
    env_params: Any = None,
    isr_network: ISRNetwork | None = None,
    extra_metrics=None,
    distance: bool = False,
    reward_form: str = "add",
) -> list[tuple[Runner, UpdateMetrics, Timing]]:
    """`autonomy` for each of `variants` (an ISR threshold and a schedule each), all in the
    same compiled calls over one run axis [variants * conditions * runs]: compiled once, and
    each variant's numbers are those `autonomy` gives it alone (runs are independent). The
    first variant's Timing holds the time; the others say `shared`."""
    runs = runners.step.shape[0]
    steps = len(conditions) * runs * num_updates * ppo.config.batch_size
    call = AutonomyCall(
        conditions, num_updates, env_params, isr_network, extra_metrics, distance, reward_form
    )
    stored = store()
    if stored is None:
        return _autonomy(ppo, runners, isr_params, call, variants, progress, steps)
    runs_seen = _run_digests(runners, isr_params, env_params)
    keys = _run_fingerprints(ppo, runners, call, variants, runs_seen)
    found = [stored.get(key) for key in keys]
    if not all(found) and distance is False:  # runs measured with `distance` serve too
        wider = dataclasses.replace(call, distance=True)
        found = [
            _without_distance(stored.get(key))
            for key in _run_fingerprints(ppo, runners, wider, variants, runs_seen)
        ]
    if all(found):  # every run computed already, perhaps in calls of other shapes
        if progress is not None:
            progress.advance(steps * len(variants))
        count = len(variants)
        stack = lambda *runs: jnp.stack(runs, axis=1)  # noqa: E731
        return [
            (*jax.tree.map(stack, *found[v::count]), Timing(steps=steps, shared=True))
            for v in range(count)
        ]
    outcome = _autonomy(ppo, runners, isr_params, call, variants, progress, steps)
    for v, (final, metrics, _) in enumerate(outcome):
        for r in range(runners.step.shape[0]):
            run = jax.tree.map(lambda x, r=r: x[:, r], (final, metrics))
            stored[keys[r * len(variants) + v]] = run
    return outcome


@dataclass(frozen=True)
class AutonomyCall:
    """What every run of one `autonomy_variants` call shares, besides its runners, ISR
    parameters and variants (see `autonomy`)."""

    conditions: tuple[str, ...]
    num_updates: int
    env_params: Any = None
    """A task per run (leading run axis), or None: `ppo.env_params` for all."""
    isr_network: ISRNetwork | None = None
    extra_metrics: Any = None
    distance: bool = False
    reward_form: str = "add"

    def fingerprinted(self) -> tuple:
        """All of it that a run's outcome depends on, but for the per-run `env_params`."""
        return (
            self.conditions,
            self.num_updates,
            self.isr_network,
            self.extra_metrics,
            self.distance,
            self.reward_form,
        )


def _run_digests(runners, isr_params, env_params) -> list[str]:
    """A digest of each run's own inputs: its runner, ISR parameters and task."""
    return [
        fingerprint(jax.tree.map(lambda x, r=r: x[r], (runners, isr_params, env_params)))
        for r in range(runners.step.shape[0])
    ]


def _run_fingerprints(ppo, runners, call: AutonomyCall, variants, runs: list[str]) -> list[str]:
    """The fingerprint of each run (its digest in `runs`) and variant of an `autonomy_variants`
    call (run-major): all that its outcome depends on. Runs are independent, so a run's outcome
    is the same whatever else its call computes (measured: hacking's autonomy equals
    overoptimization's runs with the same ISRs, row for row)."""
    switch_step = int(np.asarray(runners.step).max())  # one for every run of the call
    common = (_fields(ppo), *call.fingerprinted())
    return [
        fingerprint("autonomy run", *common, switch_step, run, variant)
        for run in runs
        for variant in variants
    ]


def _without_distance(outcome):
    """A run's `(final, metrics)` less the metric `distance` (None stays None)."""
    if outcome is None:
        return None
    final, metrics = outcome
    extra = {name: value for name, value in metrics.extra.items() if name != "distance"}
    return final, metrics.replace(extra=extra)


def _autonomy(ppo, runners, isr_params, call: AutonomyCall, variants, progress, steps):
    runs, count = runners.step.shape[0], len(variants)
    conditions = call.conditions
    switch_step = int(np.asarray(runners.step).max())
    env_params = per_run(ppo.env_params, runs) if call.env_params is None else call.env_params

    outcome: list[dict] = [{} for _ in variants]
    timing = Timing(steps=steps)
    groups = [
        tuple(c for c in conditions if c != "isr"),
        tuple(c for c in conditions if c == "isr"),
    ]
    for group in filter(None, groups):
        each = [
            autonomy_settings(
                group,
                switch_step,
                runs,
                isr_params,
                threshold,
                call.isr_network,
                plan,
                call.reward_form,
            )
            for threshold, plan in variants
        ]
        settings = jax.tree.map(lambda *parts: jnp.concatenate(parts), *each)
        copies = len(group) * count
        stacked, params = (tile(tree, copies) for tree in (runners, env_params))
        index = jnp.repeat(jnp.asarray([conditions.index(c) for c in group]), runs)
        stacked = stacked.replace(key=jax.vmap(jax.random.fold_in)(stacked.key, tile(index, count)))
        final, metrics = continue_runs(
            ppo,
            stacked,
            settings,
            call.num_updates,
            timing,
            f"autonomy: {', '.join(group)}" + (f" x {count}" if count > 1 else ""),
            progress,
            params,
            call.extra_metrics,
            call.distance,
        )
        for v in range(count):
            for i, condition in enumerate(group):
                start = (v * len(group) + i) * runs
                outcome[v][condition] = jax.tree.map(
                    lambda x, start=start: x[start : start + runs], (final, metrics)
                )
    found = []
    for v, parts in enumerate(outcome):
        final, metrics = jax.tree.map(
            lambda *pieces: jnp.stack(pieces), *(parts[c] for c in conditions)
        )
        found.append((final, metrics, timing if v == 0 else Timing(steps=steps, shared=True)))
    return found


def runs_continuer(
    ppo: PPO,
    num_updates: int,
    progress: Progress | None = None,
    extra_metrics=None,
    distance: bool = False,
):
    """`continue_runs` for one learner and update count: a function `(runners, settings,
    timing, name, env_params=None) -> (runners, metrics)` whose calls with arguments of the
    same shapes share one compiled program (they differ only in values). With `distance`,
    each update also measures `policy_distance` from the run's policy at the start."""

    def init(runner, setting, params):
        start = runner.train.params if distance else None
        return ppo.start_caregiver(runner, setting), setting, params, start

    def body(carry, _):
        runner, setting, params, start = carry
        task = dataclasses.replace(ppo, env_params=params)
        acting = runner.train.params
        runner, metrics, rollout = task.update(runner, setting, extra_metrics)
        if start is not None:
            moved = policy_distance(ppo, acting, start, rollout.obs)
            metrics = metrics.replace(extra={**metrics.extra, "distance": moved})
        return (runner, setting, params, start), metrics

    loop = UpdateLoop(init, body, num_updates, ppo.config)

    def call(runners: Runner, settings: LearnerReward, timing: Timing, name: str, env_params=None):
        if env_params is None:
            env_params = per_run(ppo.env_params, runners.step.shape[0])
        (runners, *_), metrics = loop(
            runners,
            settings,
            env_params,
            timing=timing,
            name=name,
            progress=progress,
        )
        return runners, metrics

    return call


def continue_runs(
    ppo: PPO,
    runners: Runner,
    settings: LearnerReward,
    num_updates: int,
    timing: Timing,
    name: str,
    progress: Progress | None = None,
    env_params: Any = None,
    extra_metrics=None,
    distance: bool = False,
) -> tuple[Runner, UpdateMetrics]:
    """`num_updates` more updates of each run of `runners`, rewarded by its own `settings`
    (both with a leading run axis; `env_params` too if given, else `ppo.env_params` for all),
    in one compiled call timed into `timing` under `name`. Returns the runners and metrics
    [runs, updates]."""
    call = runs_continuer(ppo, num_updates, progress, extra_metrics, distance)
    return call(runners, settings, timing, name, env_params)


def policy_distance(ppo: PPO, params: Any, start: Any, obs: jax.Array) -> jax.Array:
    """float32 d = sqrt(KL(pi || pi_0)): the policy `params` against the policy `start`, the
    per-state KL divergence averaged over the observations `obs` (uint8[..., H, W, C], the
    states the learner met). The distance that optimisation against a proxy reward travels
    (Gao, Schulman and Hilton 2022)."""
    obs = obs.reshape(-1, *obs.shape[-3:])
    log_p = jax.nn.log_softmax(ppo.policy(params, obs)[0])
    log_q = jax.nn.log_softmax(ppo.policy(start, obs)[0])
    kl = (jnp.exp(log_p) * (log_p - log_q)).sum(-1).mean()
    return jnp.sqrt(jnp.maximum(kl, 0.0))


@struct.dataclass
class Snapshots:
    """Runs' states kept along a socialization (`socialize_snapshots`)."""

    at_updates: Runner
    """The runners after each of the fixed update counts asked for, leading axes [counts, runs]."""
    ready: Runner
    """The runners at the update where each readiness threshold was first met (or at the last
    update if it never was), leading axes [thresholds, runs]."""
    ready_update: jax.Array
    """int32[thresholds, runs]: updates done when the threshold was met; the last update if
    it never was (see `never_ready`)."""
    never_ready: jax.Array
    """bool[thresholds, runs]: the threshold was not met by the end."""


def socialize_snapshots(
    ppo: PPO,
    keys: jax.Array,
    num_updates: int,
    at_updates: tuple[int, ...],
    ready_goals: tuple[float, ...] = (),
    ready_window: int = 4,
    ready_until: int | None = None,
    rewards: LearnerReward | None = None,
    progress: Progress | None = None,
    name: str = "socialization",
) -> tuple[UpdateMetrics, ISRDataset, Snapshots, Timing]:
    """Socialize one run per key for `num_updates` updates, keeping each run's state after each
    of `at_updates` updates and at the update where it first becomes *ready* by each of
    `ready_goals`: its goals per episode, averaged over its last `ready_window` updates, reach
    the threshold (`caregiver.readiness_check`, the `readiness` schedule's rule), within the
    first `ready_until` updates (all by default; a run not ready by then is kept there). A
    socialization stopped at an update is the same run up to it, so a snapshot is where a
    shorter socialization, or a caregiver who leaves when the learner is ready, would hand over.

    `rewards` (with a leading run axis; no internal reward) says when the caregiver is there;
    by default it is there throughout. Returns metrics [runs, updates], the ISR data of every
    step in time order (`observed` where the caregiver was present), the `Snapshots` and the
    timing.
    """
    runs = int(keys.shape[0])
    rewards = rewards if rewards is not None else per_run(caregiver_present(), runs)
    fixed = jnp.asarray(at_updates, jnp.int32)
    thresholds = jnp.asarray(ready_goals, jnp.float32)
    ready_until = num_updates if ready_until is None else ready_until
    count = len(at_updates) + len(ready_goals)
    timing = Timing(steps=runs * num_updates * ppo.config.batch_size)

    def init(key, rewards):
        runner = ppo.start_caregiver(ppo.init(key), rewards)
        kept = jax.tree.map(lambda x: jnp.stack([x] * count), runner)
        ready_update = jnp.full(len(ready_goals), -1, jnp.int32)
        recent = jnp.full(ready_window, jnp.nan, jnp.float32)
        return runner, kept, ready_update, recent, rewards

    def body(carry, done):
        runner, kept, ready_update, recent, rewards = carry
        runner, metrics, rollout = ppo.update(runner, rewards)
        recent, ready = readiness_check(recent, metrics.goals_per_episode, thresholds)
        ready = ready & (done <= ready_until)
        waiting = ready_update < 0
        take_ready = waiting & (ready | (done == ready_until))
        ready_update = jnp.where(waiting & ready, done, ready_update)
        take = jnp.concatenate([fixed == done, take_ready])
        kept = jax.tree.map(
            lambda k, x: jnp.where(take.reshape(-1, *[1] * x.ndim), x[None], k), kept, runner
        )
        data = (*isr_data(rollout), rollout.presence)
        return (runner, kept, ready_update, recent, rewards), (metrics, data)

    loop = UpdateLoop(init, body, num_updates, ppo.config)
    (_, kept, ready_update, _, _), (metrics, data) = loop(
        keys,
        rewards,
        timing=timing,
        name=name,
        progress=progress,
    )
    never = ready_update < 0
    ready_update = jnp.where(never, ready_until, ready_update)
    obs, action, social_reward, *partner, presence = data
    dataset = _dataset(obs, action, social_reward, partner, presence > 0)
    kept = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), kept)  # [count, runs, ...]
    snapshots = Snapshots(
        at_updates=jax.tree.map(lambda x: x[: len(at_updates)], kept),
        ready=jax.tree.map(lambda x: x[len(at_updates) :], kept),
        ready_update=ready_update.T,
        never_ready=never.T,
    )
    return metrics, dataset, snapshots, timing


def isr_trainer(
    config: ISRConfig,
    num_samples: int,
    network: ISRNetwork | None = None,
    progress: Progress | None = None,
):
    """A function `(keys, rows, observed, dataset) -> (ISRResult, Timing)` that trains many
    ISRs in one compiled call, the i-th from `keys[i]` on row `rows[i]` of `dataset` (leading
    axis [rows], `num_samples` steps) with only the steps of `observed[i]` (bool[ISRs, N]): a
    prefix (a shorter socialization) or the steps the caregiver saw. The ISRs of a call train
    one after another on a CPU, side by side on a GPU or TPU (`over_runs`); calls with
    arguments of the same shapes share one compiled program."""
    train_one = make_isr_train(config, num_samples, network)

    def train(keys, rows, observed, dataset):  # the data an argument, not a constant
        def one(key, row, seen):
            data = jax.tree.map(lambda x: x[row], dataset).replace(observed=seen)
            return train_one(key, data)

        return over_runs(one)(keys, rows, observed)

    def call(keys, rows, observed, dataset: ISRDataset) -> tuple[ISRResult, Timing]:
        timing = Timing()
        arguments = (keys, rows, observed, dataset)
        result = compiled_call(
            train, *arguments, timing=timing, name="ISR training", progress=progress
        )
        return result, timing

    return call


def phase_steps(config: PPOConfig, seeds: int, *steps: int) -> int:
    """Environment steps of `seeds` runs through phases of `steps` each (whole rollouts)."""
    return seeds * config.batch_size * sum(config.num_updates(count) for count in steps)


def per_run(tree: Any, runs: int) -> Any:
    """`tree` repeated along a new leading run axis of length `runs`."""
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (runs, *jnp.shape(x))), tree)


def tile(tree: Any, copies: int) -> Any:
    """`copies` copies of `tree` concatenated along its leading axis (copy-major)."""
    return jax.tree.map(lambda x: jnp.concatenate([x] * copies), tree)


def seed_keys(seeds: list[int]) -> tuple[jax.Array, jax.Array]:
    """Per seed, a key for its training runs and one for its ISR."""
    keys = jax.vmap(jax.random.key)(np.asarray(seeds))
    key_runs, key_isr = jax.vmap(lambda k: jax.random.split(k))(keys).T
    return key_runs, key_isr
