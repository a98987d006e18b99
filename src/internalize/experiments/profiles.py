"""Profiles: named bundles of settings laid under the explicit ones (`--profile NAME`).

A profile gives, per experiment, a nested mapping of settings (the form `config.update` takes).
`configs.make_config` (and so `reproduce NAME --profile`, `reproduce all --profile`, `sweep
--profile`) applies it after the preset and before every explicit setting (a `--config` file,
the command line's options, `--set`): a user overrides any of it. The profile's name is a
setting too (`profile`), so a run's `config.json` records it beside the values it gave.

`original` turns on, in each experiment, every difference of SPEC §7 that is a setting: what the
authors' code did where the paper's model (the defaults) says otherwise. docs/fidelity.md lists
them; what SPEC §7 describes but no setting offers is named there as well. This module is plain
data (the command line reads `PROFILE_NAMES` before JAX starts).
"""

from typing import Any

ORIGINAL_ISR: dict[str, Any] = {"axes": "original", "conv_init": "torch"}
"""The original's ISR network, every experiment (SPEC §7, Task 1 and learners)."""
ORIGINAL_BOULDER: dict[str, Any] = {
    "n_walls": 8,
    "actions": "original",
    "learner_start": "goal_side",
    "partner": "original",
    "order": "random",
    "observation": "original",
}
"""The original's boulder world (`envs.boulder.BoulderRules.original()`, SPEC §7 Prosocial)."""
ORIGINAL_PROSOCIAL: dict[str, Any] = {
    "isr": ORIGINAL_ISR,
    "reward_form": "alone",
    "isr_threshold": None,
    "boulder": ORIGINAL_BOULDER,
    "ppo": {"obs_scale": 1.0},
}
"""Fig. 7: R_i alone (no threshold: SPEC §7 names none for it), the original's world, and its
observations not divided by 255."""
ORIGINAL_GENERALIZATION: dict[str, Any] = {
    "isr": ORIGINAL_ISR,
    "reward_form": "replace",
    "isr_threshold": 0.2,
    "greedy": True,
    "best_checkpoint_steps": 10_000,
}
"""Figs. 4-5: R_i instead of R_e where it exceeds 0.2, greedy evaluation, autonomy from the best
of the checkpoints taken every 1e4 socialization steps."""
ORIGINAL_RETENTION: dict[str, Any] = {
    "isr": ORIGINAL_ISR,
    "reward_form": "add",
    "isr_threshold": None,
}
"""Fig. 1: R_e + R_i, unthresholded (the paper's form, said here so that the profile is whole)."""

PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "original": {
        "retention": ORIGINAL_RETENTION,
        "hacking": {"isr": ORIGINAL_ISR},
        "overoptimization": {"isr": ORIGINAL_ISR},
        "scaling": {
            "isr": {**ORIGINAL_ISR, "learning_rate": 3e-5, "batch_size": 10, "train_on_test": True}
        },
        "ood": ORIGINAL_GENERALIZATION,
        "layouts": ORIGINAL_GENERALIZATION,
        # The ISR of Fig. 7 had no train/test split: it trained on every sample.
        "prosocial": {**ORIGINAL_PROSOCIAL, "isr": {**ORIGINAL_ISR, "train_on_test": True}},
        # Beyond the paper: as the experiment whose world and protocol each shares. Departure's
        # ISR learns from the observed steps only, which `isr.train_on_test` does not take.
        "departure": ORIGINAL_RETENTION,
        "departure-boulder": ORIGINAL_PROSOCIAL,
        # A teaching session's replay retrains the session's own learner and ISR: a person is
        # not the original's caregiver, so nothing of SPEC §7 applies.
        "teach": {},
    },
}
"""Profile name -> experiment name -> settings."""
PROFILE_NAMES = tuple(PROFILES)


def profile_settings(profile: str, experiment: str) -> dict[str, Any]:
    """The settings `profile` gives `experiment` (a nested mapping); ValueError naming the
    known profiles, or the experiments the profile has settings for."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known: {list(PROFILE_NAMES)}")
    if experiment not in PROFILES[profile]:
        raise ValueError(
            f"profile {profile!r} has no settings for experiment {experiment!r}; it has them "
            f"for {list(PROFILES[profile])}"
        )
    return PROFILES[profile][experiment]
