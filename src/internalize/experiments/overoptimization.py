"""Beyond the paper: the overoptimization curve of internalized values, and ISR ensembles.

Experiment D shows an ISR trained on 1/12 of the data being hacked. Here, per seed, one
socialization (caregiver present, 3 random blocks, as in D) gives the data; on its earliest
share `f` for each of `data_fractions` (1/24, 1/12, 1/6, 1/3, all) are trained a single ISR
(D's: `isr_partial` at 1/12, `isr_full` at all) and an ensemble of `members` ISRs
(`internalize.isr.ensemble`: independent initialisations, Poisson bootstrap resamples), and
autonomy runs from the socialized learner once with the single ISR and once with the ensemble
under each of `aggregations` (mean, min = worst case, uwo = mean - lambda * variance, lambda
`isr.penalty`). Per update: the proxy (internal reward per episode), the gold (true return and
goals per episode) and d = sqrt(KL(policy || socialized policy)), the per-state KL averaged over
the learner's own states (`phases.policy_distance`).

Per run, gold against d is fitted by least squares with Gao, Schulman and Hilton's (2022) RL
form, `gold(d) = g0 + d * (alpha - beta * log d)`: their form with the socialized policy's gold
`g0` fitted too (the first update's gold alone is one rollout's noise). alpha and beta are
summarized over seeds per data size and ISR kind; whether beta rises as the data shrinks is a
one-sample t-test over seeds of each seed's slope of beta against log2 f. The *share of the hack
closed* at `hack_fraction` (1/12) is `(gold_late(variant) - gold_late(single)) /
(gold_late(single, all data) - gold_late(single))`, of the means over seeds, with a paired
t-test over seeds of gold_late(variant) against gold_late(single); the cost with all the data is
the paired difference there. Late: the last `window_fraction` of autonomy.
"""

from dataclasses import dataclass

import jax
import numpy as np

from internalize.experiments.hacking import (
    MAP_GOAL,
    MAP_WALLS,
    NO_REWARD_MAP,
    LoopingMetric,
    save_map_figure,
)
from internalize.experiments.phases import autonomy, phase_steps, socialize, tile, train_isr
from internalize.experiments.runner import Protocol, Run
from internalize.experiments.settings import ScheduleSettings, WorldSettings
from internalize.experiments.tables import autonomy_rows, windows
from internalize.isr.ensemble import AGGREGATIONS, disagreement, with_aggregation
from internalize.isr.maps import goals_reward_maps
from internalize.isr.train import split_sizes
from internalize.learners.ppo import PPO
from internalize.plots import _pyplot
from internalize.stats import paired_test, summarize

GOLD = "true_return"
PROXY = "internal_reward"
METRICS = (PROXY, GOLD, "goals_per_episode", "looping", "distance")
SINGLE = "single"
PUBLISHED = {
    "source": "beyond the paper; anchors: Gao, Schulman and Hilton 2022; Coste et al. 2024; "
    "Eisenstein et al. 2023 (qualitative)",
    "finding": "gold reward against d = sqrt(KL) follows d * (alpha - beta * log d), its beta "
    "growing as the proxy's data shrink; conservative ensembles (worst case, uncertainty-"
    "weighted) nearly remove overoptimization, but not a hack that every member shares",
}


@dataclass(frozen=True)
class OveroptimizationConfig(ScheduleSettings, WorldSettings):
    """Settings of the overoptimization experiment."""

    socialize_steps: int = 120_000
    """Environment steps of socialization (rounded up to whole rollouts)."""
    autonomy_steps: int = 120_000
    """Environment steps of autonomy with each ISR (rounded up to whole rollouts), as in D."""
    data_fractions: tuple[float, ...] = (1 / 24, 1 / 12, 1 / 6, 1 / 3, 1.0)
    """Shares of the socialization samples, the earliest, that the ISRs learn from."""
    hack_fraction: float = 1 / 12
    """The share at which the share of the hack closed is measured (one of `data_fractions`)."""
    members: int = 5
    """ISRs in each ensemble."""
    aggregations: tuple[str, ...] = AGGREGATIONS
    """How the ensembles' rewards combine, one autonomy each (`mean`, `min`, `uwo`)."""
    loop_threshold: float = 0.1
    """Internal reward above this on a step that reaches no goal counts as looping."""
    window_fraction: float = 0.1
    """Share of autonomy at its start (early) and at its end (late) that is compared."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_positive("socialize_steps", "autonomy_steps")
        fractions = self.data_fractions
        if not fractions or any(not 0.0 < f <= 1.0 for f in fractions):
            raise ValueError(f"data_fractions must lie in (0, 1], got {fractions}")
        if len(set(fractions)) != len(fractions) or 1.0 not in fractions:
            raise ValueError(f"data_fractions must be distinct and include 1.0, got {fractions}")
        if self.hack_fraction not in fractions:
            raise ValueError(
                f"hack_fraction {self.hack_fraction} must be one of data_fractions {fractions}"
            )
        if self.members < 2:
            raise ValueError(f"an ensemble needs members >= 2, got {self.members}")
        unknown = [a for a in self.aggregations if a not in AGGREGATIONS]
        if unknown or not self.aggregations:
            raise ValueError(f"aggregations must be some of {list(AGGREGATIONS)}, got {unknown}")
        if not 0.0 < self.window_fraction <= 0.5:
            raise ValueError(f"window_fraction must lie in (0, 0.5], got {self.window_fraction}")
        if self.isr.members != 1:
            raise ValueError(
                "set the ensemble's size with members, not isr.members (the single ISR is "
                "trained with isr.members = 1)"
            )


def fraction_label(fraction: float) -> str:
    """'all', or '1/n' where `fraction` is one over a whole number, else the number."""
    if fraction == 1.0:
        return "all"
    inverse = 1.0 / fraction
    return f"1/{round(inverse)}" if abs(inverse - round(inverse)) < 1e-9 else f"{fraction:g}"


class Overoptimization(Protocol):
    """Socialize once; per data share a single ISR and an ensemble; autonomy with the single ISR
    and with the ensemble under each aggregation; fit gold against d."""

    def __init__(self, name: str, config: OveroptimizationConfig) -> None:
        super().__init__(name, config)
        self.env, env_params = config.make_world()
        self.ppo = PPO(config.ppo, self.env, env_params)
        self.socialize_updates = config.ppo.num_updates(config.socialize_steps)
        self.autonomy_updates = config.ppo.num_updates(config.autonomy_steps)
        self.samples = self.socialize_updates * config.ppo.batch_size
        self.sizes = [int(self.samples * f) for f in config.data_fractions]
        for size in self.sizes:
            split_sizes(size, config.isr.train_fraction)  # fails early if too few
        self.labels = [fraction_label(f) for f in config.data_fractions]
        self.kinds = (SINGLE, *config.aggregations)
        self.conditions = tuple(f"{kind}:{label}" for kind in self.kinds for label in self.labels)

    def describe(self) -> dict:
        return {
            "conditions": list(self.conditions),
            "socialize_updates": self.socialize_updates,
            "autonomy_updates": self.autonomy_updates,
            "isr_samples": dict(zip(self.labels, self.sizes, strict=True)),
            "env": self.config.describe_world(self.env, self.ppo.env_params),
        }

    def planned_steps(self) -> int:
        config = self.config
        autonomy_steps = [config.autonomy_steps] * len(self.conditions)
        return phase_steps(config.ppo, config.seeds, config.socialize_steps, *autonomy_steps)

    def phases(self, run: Run):
        config, bar = self.config, run.progress
        runners, social_metrics, dataset = run.timed(
            "socialization", socialize(self.ppo, run.key_runs, self.socialize_updates, bar)
        )
        single_config = config.isr.replace(members=1)
        ensemble_config = config.isr.replace(members=config.members)
        singles, ensembles = [], []
        for label, size in zip(self.labels, self.sizes, strict=True):
            subset = jax.tree.map(lambda x, size=size: x[:, :size], dataset)
            singles.append(
                run.timed(f"isr {label}", train_isr(single_config, run.key_isr, subset, bar))
            )
            ensembles.append(
                run.timed(f"ensemble {label}", train_isr(ensemble_config, run.key_isr, subset, bar))
            )
        del dataset
        stacked = [
            jax.vmap(lambda p, a=aggregation: with_aggregation(p, a, config.isr.penalty))(
                ensemble.params
            )
            for aggregation in config.aggregations
            for ensemble in ensembles
        ]
        # Two calls (a single ISR's parameters and an ensemble's differ in shape), each over
        # runs [ISR..., seeds...]: the same random numbers for a seed under every ISR.
        found = []
        for name, params in (
            ("autonomy: single", [isr.params for isr in singles]),
            ("autonomy: ensembles", stacked),
        ):
            _, metrics = run.timed(
                name,
                autonomy(
                    self.ppo,
                    tile(runners, len(params)),
                    ("isr",),
                    jax.tree.map(lambda *parts: np.concatenate(parts), *params),
                    self.autonomy_updates,
                    bar,
                    isr_network=self.isr_network,
                    extra_metrics=LoopingMetric(config.loop_threshold),
                    schedule=config.schedule,
                    distance=True,
                ),
            )
            found.append(
                jax.tree.map(lambda x: x[0].reshape(-1, config.seeds, *x.shape[2:]), metrics)
            )
        metrics = jax.tree.map(lambda *parts: np.concatenate(parts), *found)
        isrs = {"single": singles, "ensemble": ensembles}
        return runners, social_metrics, isrs, metrics

    def analyse(self, outcome, run: Run) -> dict:
        config = self.config
        runners, social_metrics, isrs, metrics = outcome
        run.save_checkpoints(
            {"socialized": runners.train.params},
            {
                f"{kind}_{label.replace('/', 'of')}": isr.params
                for kind, found in isrs.items()
                for label, isr in zip(self.labels, found, strict=True)
            },
        )
        run.write_csv(
            "metrics.csv", *autonomy_rows(run.seeds, social_metrics, metrics, self.conditions)
        )
        curves, per_seed = windows(metrics, self.conditions, METRICS, config.window_fraction)
        fits = {
            condition: fit_gold(curves[condition]["distance"], curves[condition][GOLD])
            for condition in self.conditions
        }
        for condition, fit in fits.items():
            per_seed[condition].update({name: fit[name].tolist() for name in ("alpha", "beta")})
        hack = self.hack_closed(per_seed)
        beta = self.beta_trend(fits)
        numbers = {
            "conditions": per_seed,
            "summary": {
                condition: {name: summarize(values).as_dict() for name, values in entries.items()}
                for condition, entries in per_seed.items()
            },
            "fits": {
                kind: {
                    label: {
                        name: summarize(fits[f"{kind}:{label}"][name]).as_dict()
                        for name in ("alpha", "beta", "g0")
                    }
                    for label in self.labels
                }
                for kind in self.kinds
            },
            "beta_against_data": beta,
            "hack_closed": hack,
            "findings": self.findings(hack, beta),
            "published": PUBLISHED,
            "isr_model": {
                kind: {
                    label: {
                        "samples": size,
                        "test_mse": np.asarray(isr.test_mse).tolist(),
                    }
                    for label, size, isr in zip(self.labels, self.sizes, found, strict=True)
                }
                for kind, found in isrs.items()
            },
            "reward_map": (
                {"walls": MAP_WALLS, "goal": MAP_GOAL, **self.save_reward_maps(isrs, run)}
                if config.world == "goals"
                else NO_REWARD_MAP
            ),
        }
        run.save_figure("overoptimization.png", self.figure(curves, fits))
        run.save_figure("fits.png", self.fits_figure(numbers["fits"]))
        return numbers

    def hack_closed(self, per_seed: dict) -> dict:
        """Per aggregation: the share of the hack closed at `hack_fraction` (None where the single
        ISR's gold is the same with all the data), its paired test against the single ISR there,
        and the paired cost with all the data."""
        hack = fraction_label(self.config.hack_fraction)

        def late(kind, label):
            return np.asarray(per_seed[f"{kind}:{label}"][f"{GOLD}_late"])

        single, single_all = late(SINGLE, hack), late(SINGLE, "all")
        gap = single_all.mean() - single.mean()
        found = {}
        for aggregation in self.config.aggregations:
            variant = late(aggregation, hack)
            found[aggregation] = {
                "share": float((variant.mean() - single.mean()) / gap) if gap != 0 else None,
                "hack_gap": float(gap),
                "test": paired_test(variant, single).as_dict(),
                "cost_with_all_data": paired_test(late(aggregation, "all"), single_all).as_dict(),
            }
        return found

    def beta_trend(self, fits: dict) -> dict:
        """Per ISR kind: each seed's slope of beta against log2 of the data share, and the
        one-sample t-test of slope < 0 (beta rises as the data shrink)."""
        x = np.log2(np.asarray(self.config.data_fractions))
        found = {}
        for kind in self.kinds:
            betas = np.stack([fits[f"{kind}:{label}"]["beta"] for label in self.labels], 1)
            slopes = np.polyfit(x, betas.T, 1)[0]
            found[kind] = {
                "slope_per_seed": slopes.tolist(),
                "test": paired_test(slopes, np.zeros_like(slopes), "less").as_dict(),
            }
        return found

    def findings(self, hack: dict, beta: dict) -> dict:
        """Each finding, as its test says; None with one seed (no test can be computed)."""
        found = {}
        for aggregation, entry in hack.items():
            share, p_value = entry["share"], entry["test"]["p_value"]
            closes = share is not None and share >= 0.8 and (p_value or 1.0) < 0.05
            found[f"{aggregation}: closes >= 80% of the hack"] = closes
            cost = entry["cost_with_all_data"]
            found[f"{aggregation}: costs nothing with all the data"] = (
                cost["difference"] >= 0 or (cost["p_value"] or 0.0) >= 0.05
            )
        for kind, entry in beta.items():
            p_value = entry["test"]["p_value"]
            found[f"{kind}: beta rises as the data shrink"] = p_value is not None and p_value < 0.05
        tested = self.config.seeds >= 2
        return {name: bool(value) if tested else None for name, value in found.items()}

    def save_reward_maps(self, isrs: dict, run: Run) -> dict:
        """`reward_map.png` of the first seed at `hack_fraction`: the true reward, the single
        ISR, the ensemble's mean and its members' disagreement (standard deviation)."""
        seed, index = run.seeds[0], self.config.data_fractions.index(self.config.hack_fraction)
        label = self.labels[index]
        first = {
            kind: jax.tree.map(lambda x: x[0], found[index].params) for kind, found in isrs.items()
        }
        mean = with_aggregation(first["ensemble"], "mean", 0.0)
        layout = (self.env, self.ppo.env_params)
        maps = goals_reward_maps(
            *layout,
            {f"single ISR {label} (seed {seed})": first["single"], f"ensemble mean {label}": mean},
            MAP_WALLS,
            MAP_GOAL,
            network=self.isr_network,
        )
        spread = goals_reward_maps(
            *layout,
            {f"ensemble disagreement {label} (sd)": mean},
            MAP_WALLS,
            MAP_GOAL,
            network=self.isr_network,
            measure=disagreement,
        )
        maps.update({name: value for name, value in spread.items() if name != "true"})
        save_map_figure(
            run,
            maps,
            self.env.size,
            "Reward per agent cell, heading and action: true R_s, single ISR, ensemble",
        )
        names = list(maps)
        return {
            "max_abs_error": {
                name: float(np.nanmax(np.abs(maps[name] - maps["true"]))) for name in names[1:3]
            },
            "mean_disagreement": float(np.nanmean(maps[names[3]])),
        }

    def figure(self, curves: dict, fits: dict):
        """Gao-style: per data share, gold (true return) and proxy (internal reward) per
        episode against d, the means over seeds per update, with the fitted gold overlaid."""
        plt = _pyplot()
        labels = self.labels
        figure, axes = plt.subplots(
            2, len(labels), figsize=(3.6 * len(labels), 6.4), squeeze=False, sharey="row"
        )
        colours = dict(zip(self.kinds, ("black", "tab:blue", "tab:red", "tab:green"), strict=False))
        for column, label in enumerate(labels):
            for kind in self.kinds:
                condition = f"{kind}:{label}"
                d = curves[condition]["distance"].mean(0)
                colour = colours.get(kind)
                for row, metric in enumerate((GOLD, PROXY)):
                    axes[row][column].plot(
                        d,
                        curves[condition][metric].mean(0),
                        ".",
                        ms=2.5,
                        color=colour,
                        alpha=0.6,
                        label=kind if row == 0 else None,
                    )
                fit = fits[condition]
                grid = np.linspace(1e-3, max(float(d.max()), 1e-2), 100)
                axes[0][column].plot(
                    grid,
                    gold_form(grid, fit["g0"].mean(), fit["alpha"].mean(), fit["beta"].mean()),
                    color=colour,
                    linewidth=1.2,
                )
            axes[0][column].set_title(f"ISR data: {label}", fontsize=9)
            axes[1][column].set_xlabel("d = sqrt(KL(policy || socialized))")
        axes[0][0].set_ylabel("gold: true return per episode")
        axes[1][0].set_ylabel("proxy: internal reward per episode")
        axes[0][0].legend(fontsize=7)
        for ax in axes.flat:
            ax.grid(alpha=0.3)
        figure.suptitle(
            f"Overoptimization ({self.config.preset} preset, {self.config.seeds} seeds; "
            "dots: means per update, lines: fitted g0 + d(alpha - beta log d))",
            fontsize=10,
        )
        figure.tight_layout()
        return figure

    def fits_figure(self, fits: dict):
        """alpha and beta (mean and 95% CI over seeds) against the ISR's data share."""
        plt = _pyplot()
        figure, axes = plt.subplots(1, 2, figsize=(9, 3.6))
        x = np.asarray(self.config.data_fractions)
        for offset, kind in enumerate(self.kinds):
            shift = 2 ** ((offset - len(self.kinds) / 2) * 0.04)
            for ax, name in zip(axes, ("alpha", "beta"), strict=True):
                entries = [fits[kind][label][name] for label in self.labels]
                mean = np.asarray([e["mean"] for e in entries], np.float64)
                low = np.asarray(
                    [e["ci_low"] if e["ci_low"] is not None else np.nan for e in entries]
                )
                high = np.asarray(
                    [e["ci_high"] if e["ci_high"] is not None else np.nan for e in entries]
                )
                ax.errorbar(
                    x * shift,
                    mean,
                    yerr=[mean - low, high - mean],
                    marker="o",
                    ms=3,
                    capsize=2,
                    label=kind,
                )
        for ax, name in zip(axes, ("alpha", "beta"), strict=True):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("share of the socialization data the ISR learns from")
            ax.set_ylabel(name)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        figure.suptitle(
            "Fitted gold(d) = g0 + d (alpha - beta log d), mean and 95% CI over seeds", fontsize=10
        )
        figure.tight_layout()
        return figure


def gold_form(d, g0, alpha, beta):
    """Gao et al.'s RL form with an offset: g0 + d * (alpha - beta * log d) (0 log 0 = 0)."""
    d = np.asarray(d, np.float64)
    log_d = np.log(np.where(d > 0, d, 1.0))
    return g0 + d * (alpha - beta * log_d)


def fit_gold(distance: np.ndarray, gold: np.ndarray) -> dict[str, np.ndarray]:
    """Least-squares fits of `gold_form` per run: float[runs, updates] each in; float[runs] of
    g0, alpha and beta out (linear in them: columns 1, d, -d log d)."""
    distance, gold = np.asarray(distance, np.float64), np.asarray(gold, np.float64)
    found = {name: np.zeros(distance.shape[0]) for name in ("g0", "alpha", "beta")}
    for run, (d, g) in enumerate(zip(distance, gold, strict=True)):
        log_d = np.log(np.where(d > 0, d, 1.0))
        design = np.stack([np.ones_like(d), d, -d * log_d], 1)
        (g0, alpha, beta), *_ = np.linalg.lstsq(design, g, rcond=None)
        found["g0"][run], found["alpha"][run], found["beta"][run] = g0, alpha, beta
    return found
