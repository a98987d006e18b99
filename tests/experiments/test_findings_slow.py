"""SPEC §5 B, C and D's findings on the fast preset with 3 seeds and the default step counts (a
few minutes each on 2 CPU cores). Run with `pytest -m slow`. The 10-seed tables, with their
tests, are in the README."""

import json

import numpy as np
import pytest

from internalize.cli import main


def reproduce(tmp_path, experiment):
    out = tmp_path / experiment
    assert main(["reproduce", experiment, "--seeds", "3", "--out", str(out), "--quiet"]) == 0
    return json.loads((out / "results.json").read_text())


@pytest.mark.slow
def test_ood_finding(tmp_path):
    results = reproduce(tmp_path, "ood")
    returns = {c: np.asarray(results["conditions"][c]["return"]) for c in results["conditions"]}
    assert returns["isr"].mean() > returns["frozen"].mean()
    assert returns["isr"].mean() >= 0.9 * returns["oracle"].mean()


@pytest.mark.slow
def test_scaling_finding(tmp_path):
    results = reproduce(tmp_path, "scaling")
    test = np.asarray(results["per_seed"]["test_mse"])
    train = np.asarray(results["per_seed"]["train_mse"])
    assert np.all(np.asarray(results["tests"]["log-log slope"]["per_seed"]) < 0)
    assert np.all(test[:, -1] < test[:, 0] / 10)
    # No overfitting: the test error is never above twice the training error. (It is often
    # below it: the test split is the latest, most competent 10% of socialization.)
    ratio = test.mean(0) / train.mean(0)
    assert np.all((ratio > 1 / 3) & (ratio < 2.0)), ratio


@pytest.mark.slow
def test_hacking_finding(tmp_path):
    results = reproduce(tmp_path, "hacking")
    partial, full = results["conditions"]["isr_partial"], results["conditions"]["isr_full"]
    assert np.mean(partial["looping_late"]) > np.mean(partial["looping_early"]) + 0.05
    assert np.mean(partial["goals_per_episode_late"]) < np.mean(partial["goals_per_episode_early"])
    assert np.mean(full["looping_late"]) < 0.01
    assert np.mean(full["goals_per_episode_late"]) >= 0.9 * np.mean(full["goals_per_episode_early"])
