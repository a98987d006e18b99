"""Issue 17's comparison: the README's and docs/fidelity.md's numbers are the kept runs'
results.json numbers, the two benchmark scripts that print them read runs as documented, and
benchmarks/boulder_help_length.py finds the shortest help of a case counted by hand. Also
benchmarks/compare_runs.py, which checks a redesign against the numbers it had before."""

import dataclasses
import importlib.util
import json
import math
import re
from pathlib import Path

import jax
import numpy as np
import pytest

from internalize.envs.boulder import BoulderEnv, BoulderRules
from internalize.envs.constants import HEADING_TO_VEC

ROOT = Path(__file__).parents[1]
KEPT = ROOT / "benchmarks" / "results" / "fidelity"
LAYOUTS = {"plus": "plus", "x": "x", "U": "U", "T": "T", "four_rooms": "four rooms"}
"""The hand-picked layouts: task name -> docs/fidelity.md's label."""
REL_TOL, ABS_TOL = 1e-9, 1e-15
"""How near a number computed again here must be to the kept one. Statistics go through BLAS
and LAPACK (numpy, scipy, statsmodels), whose kernels are picked by the CPU, so their last bits
differ from machine to machine (an OLS t of 6.480441390180081 on the kept runs' Zen 5, ...083 on
a Zen 4 and a Xeon); ABS_TOL only for zeros, below any kept p-value (6.1e-13 the least)."""


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _kept(experiment: str, profile: str) -> dict:
    return json.loads((KEPT / f"{experiment}-fast-cnn-{profile}.json").read_text())


def _ten_seeds(experiment: str, profile: str) -> dict:
    """The two 5-seed runs (layouts or prosocial) of a profile as one 10-seed run."""
    parts = [KEPT / f"{experiment}-fast-cnn-{profile}{part}.json" for part in ("", "-1239")]
    return _script("fidelity_tables").combined(parts)


def _far(kept, again, path: str = "") -> list[str]:
    """Where the JSON values `again` are not `kept`: floats further apart than REL_TOL (or
    ABS_TOL), anything else (strings, ints, None, keys, lengths) not equal."""
    if isinstance(kept, dict) and isinstance(again, dict) and kept.keys() == again.keys():
        return [far for key in kept for far in _far(kept[key], again[key], f"{path}/{key}")]
    if isinstance(kept, list) and isinstance(again, list) and len(kept) == len(again):
        pairs = enumerate(zip(kept, again, strict=True))
        return [far for i, (k, a) in pairs for far in _far(k, a, f"{path}[{i}]")]
    if isinstance(kept, float) and isinstance(again, float):
        close = math.isclose(again, kept, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    else:
        close = kept == again
    return [] if close else [f"{path}: {kept!r} != {again!r}"]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _p(value: float) -> str:
    """A p-value as the README writes it: two significant digits, 6.6e-8 for 6.6e-08."""
    return re.sub(r"e-0(\d)", r"e-\1", f"{value:.2g}")


def _readme_row(start: str) -> list[str]:
    """The cells of the README's row that begins with `start`, in the fast-cnn comparison."""
    line = next(
        line
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith(f"| {start}")
    )
    return [cell.strip() for cell in line.strip("|").split("|")]


def _docs_row(start: str, width: int | None = None, section: str = "") -> list[str]:
    """The cells of docs/fidelity.md's one table row that begins with `start` (and has `width`
    cells, where given; in the section under the heading `section`, where given)."""
    text = (ROOT / "docs" / "fidelity.md").read_text()
    if section:
        text = text[text.index(f"\n### {section}") + 1 :]
        text = text[: text.find("\n### ", 1)]
    lines = text.splitlines()
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in lines
        if line.startswith(f"| {start}")
    ]
    (row,) = [row for row in rows if width is None or len(row) == width]
    return row


def _layout_cell(run: dict, task: str) -> str:
    """frozen, oracle, isr return (mean ± SE) of a layouts run on one layout, and p of isr vs
    frozen, as docs/fidelity.md's layouts tables write them."""
    part = run["per_task"][task]
    summary = [part["summary"][c]["return"] for c in ("frozen", "oracle", "isr")]
    returns = ", ".join(f"{s['mean']:.3f} ± {s['se']:.3f}" for s in summary)
    return f"{returns} ({_p(part['tests']['isr vs frozen']['p_value'])})"


@pytest.mark.parametrize("profile", ["paper", "original"])
def test_kept_runs_are_what_the_docs_say(profile):
    """Each kept run is the documented command's: its preset, profile, seeds and machine."""
    kept = (
        ("retention", 10),
        ("ood", 10),
        ("scaling", 10),
        ("hacking", 10),
    )
    for experiment, seeds in kept:
        results = _kept(experiment, profile)
        config = results["config"]
        assert results["experiment"] == experiment
        assert config["preset"] == "fast-cnn"
        assert config.get("profile") == (None if profile == "paper" else "original")
        assert results["seeds"] == list(range(1234, 1234 + seeds))
        assert results["versions"]["jax"] == "0.10.2"
        assert results["versions"]["cpus_used"] == "1"
    for experiment in ("layouts", "prosocial"):
        for part, seeds in (("", range(1234, 1239)), ("-1239", range(1239, 1244))):
            results = _kept(experiment, profile + part)
            assert results["experiment"] == experiment
            assert results["seeds"] == list(seeds)
            assert results["config"]["preset"] == "fast-cnn"
            assert results["config"].get("profile") == (None if profile == "paper" else "original")
            assert results["versions"]["cpus_used"] == "1"


def test_readme_comparison_numbers_come_from_the_kept_runs():
    column = {"paper": 1, "original": 2}
    for profile, index in column.items():
        retention = _kept("retention", profile)["conditions"]
        goals = {c: _mean(v["goals_per_episode"]) for c, v in retention.items()}
        cell = _readme_row("retention: isr / oracle")[index]
        assert cell.startswith(f"{goals['isr'] / goals['oracle']:.2f}")
        assert _readme_row("retention: none / oracle")[index] == (
            f"{goals['none'] / goals['oracle']:.3f}"
        )

        slope = _kept("scaling", profile)["tests"]["log-log slope"]["summary"]["mean"]
        assert _readme_row("scaling, 10 seeds: log-log slope")[index] == f"{slope:.2f}"

        ood = _kept("ood", profile)
        returns = [_mean(ood["conditions"][c]["return"]) for c in ("frozen", "isr", "oracle")]
        assert _readme_row("ood: frozen, isr, oracle")[index] == ", ".join(
            f"{r:.3f}" for r in returns
        )
        tests = ood["tests"]
        expected = "; ".join(
            _p(tests[pair]["p_value"]) for pair in ("isr vs frozen", "isr vs oracle")
        )
        assert _readme_row("ood: p, isr vs frozen")[index] == expected

        layouts = _ten_seeds("layouts", profile)
        pooled = layouts["pooled"]["tests"]
        expected = "; ".join(
            _p(pooled[pair]["p_value"]) for pair in ("isr vs frozen", "isr vs oracle")
        )
        assert _readme_row("layouts, 10 seeds: pooled p")[index] == expected
        prosocial = _ten_seeds("prosocial", profile)["conditions"]
        assert _readme_row("prosocial, 10 seeds")[index] == ", ".join(
            f"{_mean(prosocial[c]['helps_per_episode']):.3f}" for c in ("oracle", "none", "isr")
        )
        rooms = layouts["per_task"]["four_rooms"]["conditions"]
        assert _readme_row("layouts: four rooms")[index] == ", ".join(
            f"{_mean(rooms[c]['return']):.3f}" for c in ("frozen", "oracle", "isr")
        )


def test_the_layouts_table_of_docs_fidelity_is_the_two_runs_together():
    runs = [_ten_seeds("layouts", profile) for profile in ("paper", "original")]
    for task, label in LAYOUTS.items():
        cells = _docs_row(f"{label} | 0.", width=4)
        assert cells[1:3] == [_layout_cell(run, task) for run in runs], label
    for pair in ("isr − frozen", "isr − oracle"):
        cells = _docs_row(f"pooled {pair} (p)")
        for index, run in enumerate(runs):
            test = run["pooled"]["tests"][pair.replace(" − ", " vs ")]
            difference = f"{test['difference']:.3f}".replace("-", "−")
            assert cells[1 + index] == f"{difference} ({_p(test['p_value'])})", pair
        assert run["seeds"] == list(range(1234, 1244))


def test_the_prosocial_table_of_docs_fidelity_is_the_two_runs_together():
    runs = [_ten_seeds("prosocial", profile) for profile in ("paper", "original")]
    for condition in ("oracle", "none", "isr"):
        cells = _docs_row(f"{condition} | 0.", width=4, section="Prosocial (Fig. 7)")
        expected = [
            "{mean:.3f} ± {se:.3f}".format(**run["summary"][condition]["helps_per_episode"])
            for run in runs
        ]
        assert cells[1:3] == expected, condition
    cells = _docs_row("p, isr vs none; isr vs oracle", width=4)
    for index, run in enumerate(runs):
        tests = run["tests"]
        assert cells[1 + index] == "; ".join(
            _p(tests[pair]["p_value"]) for pair in ("isr vs none", "isr vs oracle")
        )
        assert run["seeds"] == list(range(1234, 1244))


def test_the_paper_preset_rows_are_the_kept_runs():
    """The `paper` preset's retention and ood runs and its five one-seed layouts runs: what the
    docs say they are, and the README's and docs/fidelity.md's numbers theirs."""
    retention = json.loads((KEPT / "retention-paper-5.json").read_text())
    ood = json.loads((KEPT / "ood-paper-5.json").read_text())
    layouts = [
        json.loads((KEPT / f"layouts-paper-{s}.json").read_text()) for s in range(1234, 1239)
    ]
    for results in (retention, ood, *layouts):
        assert results["config"]["preset"] == "paper"
        assert results["config"].get("profile") is None
        assert results["seeds"][0] == results["config"]["first_seed"]
        assert results["versions"]["cpus_used"] == "1"
    assert retention["seeds"] == ood["seeds"] == list(range(1234, 1239))
    assert [results["seeds"] for results in layouts] == [[seed] for seed in range(1234, 1239)]
    goals = {c: _mean(v["goals_per_episode"]) for c, v in retention["conditions"].items()}
    assert _readme_row("retention: oracle goals per episode; none")[1] == (
        f"{goals['oracle']:.2f}; {goals['none'] / goals['oracle']:.3f}; "
        f"{goals['isr'] / goals['oracle']:.2f}"
    )
    returns = [_mean(ood["conditions"][c]["return"]) for c in ("frozen", "isr", "oracle")]
    assert _readme_row("ood: frozen, isr, oracle return | 0.5")[1] == ", ".join(
        f"{r:.3f}" for r in returns
    )
    p_values = [_p(ood["tests"][pair]["p_value"]) for pair in ("isr vs frozen", "isr vs oracle")]
    assert _readme_row("ood: p, isr vs frozen; isr vs oracle | 0.36")[1] == "; ".join(
        f"{float(p):.2f}" for p in p_values
    )
    layouts = _script("fidelity_tables").combined(
        [KEPT / f"layouts-paper-{seed}.json" for seed in range(1234, 1239)]
    )
    pooled = layouts["pooled"]["tests"]
    assert _readme_row("layouts: pooled p, isr vs frozen; isr vs oracle | 1")[1] == "; ".join(
        _p(pooled[pair]["p_value"]) for pair in ("isr vs frozen", "isr vs oracle")
    )
    rooms = layouts["per_task"]["four_rooms"]["conditions"]
    assert _readme_row("layouts: four rooms frozen, oracle, isr return | 0.6")[1] == ", ".join(
        f"{_mean(rooms[c]['return']):.3f}" for c in ("frozen", "oracle", "isr")
    )
    for task, label in LAYOUTS.items():
        assert _docs_row(f"{label} | 0.", width=2)[1] == _layout_cell(layouts, task), label
    cells = _docs_row("pooled isr − frozen; isr − oracle (p)")[1]
    assert cells == "; ".join(
        f"{pooled[pair]['difference']:.3f}".replace("-", "−") + f" ({_p(pooled[pair]['p_value'])})"
        for pair in ("isr vs frozen", "isr vs oracle")
    )
    docs = (ROOT / "docs" / "fidelity.md").read_text()
    summary = ood["summary"]
    cells = ", ".join(
        f"{summary[c]['return']['mean']:.3f} ± {summary[c]['return']['se']:.3f}"
        for c in ("frozen", "isr", "oracle")
    )
    assert f"| ood: frozen, isr, oracle return | {cells} |" in docs
    oracle = retention["summary"]["oracle"]["goals_per_episode"]
    assert f"| {oracle['mean']:.3f} ± {oracle['se']:.3f} |" in docs


def test_the_hacking_rows_are_the_kept_runs():
    """docs/fidelity.md's hacking rows (late means ± SE), the hacked seeds it counts (isr_full
    below 2 of its about 3.3 early goals per episode, looping) and the README's row."""
    hacked = {}
    for index, profile in enumerate(("paper", "original")):
        results = _kept("hacking", profile)
        for condition in ("isr_partial", "isr_full"):
            for metric, label in (
                ("goals_per_episode", "goals per episode"),
                ("looping", "looping"),
            ):
                s = results["summary"][condition][f"{metric}_late"]
                start = f"{condition}: {label}, late |"
                assert _docs_row(start)[1 + index] == f"{s['mean']:.3f} ± {s['se']:.3f}", start
        full = results["conditions"]["isr_full"]
        hacked[profile] = [
            seed
            for seed, goals, looping in zip(
                results["seeds"], full["goals_per_episode_late"], full["looping_late"], strict=True
            )
            if goals < 2 and looping > 0.1
        ]
    assert hacked == {"paper": [1235, 1236, 1241, 1243], "original": []}
    text = " ".join((ROOT / "docs" / "fidelity.md").read_text().split())
    assert "it is on 4 of 10 seeds (1235, 1236, 1241, 1243" in text
    late = {p: _kept("hacking", p)["summary"] for p in ("paper", "original")}
    cells = _readme_row("hacking, 10 seeds")
    for index, profile in enumerate(("paper", "original")):
        means = [
            late[profile][c]["goals_per_episode_late"]["mean"] for c in ("isr_partial", "isr_full")
        ]
        assert cells[1 + index].startswith(f"{means[0]:.3f}; {means[1]:.3f} (")


def test_the_ood_isolation_runs_are_what_docs_fidelity_says():
    """The two ood runs on seeds 1237-1242 (the paper's model, and only the ISR's network set to
    the original's) are the documented commands', share `frozen` and `oracle` bit for bit, and
    every cell of docs/fidelity.md's table and the README's p-values are theirs."""
    runs = {name: _kept("ood", name) for name in ("paper-1237", "isrnet-1237")}
    for name, results in runs.items():
        assert results["seeds"] == list(range(1237, 1243))
        assert results["config"]["preset"] == "fast-cnn"
        assert results["config"].get("profile") is None
        assert results["versions"]["cpus_used"] == "1"
        network = "original torch" if name == "isrnet-1237" else "paper orthogonal"
        assert f"{results['config']['isr']['axes']} {results['config']['isr']['conv_init']}" == (
            network
        )
    paper, isrnet = runs["paper-1237"]["conditions"], runs["isrnet-1237"]["conditions"]
    for shared in ("frozen", "oracle"):
        assert paper[shared] == isrnet[shared]
    rows = {
        "frozen (both runs)": (paper["frozen"]["return"], None),
        "oracle (both runs)": (paper["oracle"]["return"], None),
        "isr, the paper's ISR": (paper["isr"]["return"], runs["paper-1237"]),
        "isr, `isr.axes=original`": (isrnet["isr"]["return"], runs["isrnet-1237"]),
    }
    for start, (returns, run) in rows.items():
        cells = _docs_row(start)
        p_value = "" if run is None else _p(run["tests"]["isr vs frozen"]["p_value"])
        expected = [f"{r:.3f}" for r in (*returns, _mean(returns))] + [p_value]
        assert cells[-len(expected) :] == expected, start
    p_values = [_p(runs[name]["tests"]["isr vs frozen"]["p_value"]) for name in runs]
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert f"isr vs frozen p {p_values[1]} against {p_values[0]}" in readme


def test_the_scaling_table_of_docs_fidelity_is_the_kept_runs():
    """docs/fidelity.md's scaling rows: each test MSE (mean ± SE) and the slope with its p."""

    def cells(start: str) -> list[str]:
        return _docs_row(start)[1:3]

    for index, profile in enumerate(("paper", "original")):
        results = _kept("scaling", profile)
        assert results["seeds"] == list(range(1234, 1244))
        assert results["config"].get("profile") == (None if profile == "paper" else "original")
        for size, count in (("9,216", "10240"), ("36,864", "40960"), ("108,748", "120832")):
            mse = results["summary"][count]["test_mse"]
            mean = f"{mse['mean']:.2e}".replace("e-0", "e-")
            assert cells(f"test MSE, {size} samples")[index] == (
                f"{mean} ± {mse['se']:.1e}".replace("e-0", "e-")
            )
        slope = results["tests"]["log-log slope"]
        p_value = _p(slope["slope below 0"]["p_value"])
        assert cells("log-log slope")[index] == f"{slope['summary']['mean']:.2f} ({p_value})"


def test_fidelity_tables_prints_the_kept_runs_side_by_side(capsys):
    tables = _script("fidelity_tables")
    tables.main(
        [
            f"paper={KEPT / 'retention-fast-cnn-paper.json'}",
            f"original={KEPT / 'retention-fast-cnn-original.json'}",
            f"paper={KEPT / 'layouts-fast-cnn-paper.json'}",
        ]
    )
    out = capsys.readouterr().out
    assert "### retention" in out and "### layouts" in out
    assert "| isr: goals per episode | 2.833 ± 0.298 | 3.367 ± 0.022 |" in out
    assert "| four rooms: frozen return | 0.825 ± 0.022 |" in out
    halves = [KEPT / f"layouts-fast-cnn-paper{part}.json" for part in ("", "-1239")]
    tables.main([f"paper={halves[0]}+{halves[1]}"])
    out = capsys.readouterr().out
    assert "| seeds | 10 |" in out and "| plus: frozen return | 0.432 ± 0.032 |" in out
    with pytest.raises(SystemExit, match="expected LABEL=RUN_DIR"):
        tables.main(["no-label"])


@pytest.mark.parametrize(
    ("name", "pair"),
    [
        ("layouts-fast-cnn-paper", "isr vs frozen"),
        ("ood-fast-cnn-original", "isr vs frozen"),
        ("prosocial-fast-cnn-paper", "isr vs none"),
        ("retention-paper-5", None),
    ],
)
def test_runs_combined_are_analysed_as_the_experiment_analyses_one(name, pair, tmp_path):
    """One run alone comes back with every number it wrote (those computed again within
    REL_TOL); with a copy on other seeds its seeds double and every mean stays, and a test on
    twice the seeds finds a smaller p."""
    combined = _script("fidelity_tables").combined
    path = KEPT / f"{name}.json"
    kept = json.loads(path.read_text())
    alone = combined([path])
    numbers = sorted(kept.keys() - {"config", "versions", "timings"})
    assert _far({k: kept[k] for k in numbers}, {k: alone[k] for k in numbers}) == []

    copy = {**kept, "seeds": [seed + 100 for seed in kept["seeds"]]}
    copy["config"] = {**kept["config"], "first_seed": kept["config"]["first_seed"] + 100}
    (tmp_path / "copy.json").write_text(json.dumps(copy))
    both = combined([path, tmp_path / "copy.json"])
    assert both["seeds"] == kept["seeds"] + copy["seeds"]
    assert both["config"]["seeds"] == 2 * len(kept["seeds"])
    assert len(both["isr_model"]["test_mse"]) == 2 * len(kept["isr_model"]["test_mse"])
    if "pooled" in kept:
        summaries, tests = {}, both["pooled"]["tests"]
        assert both["pooled"]["mean_return"] == pytest.approx(kept["pooled"]["mean_return"])
        assert tests[pair]["n_a"] == 2 * kept["pooled"]["tests"][pair]["n_a"]
        before = kept["pooled"]["tests"][pair]["p_value"]
    else:
        summaries, tests = kept["summary"], both.get("tests")
        before = kept["tests"][pair]["p_value"] if pair else None
    for condition, metrics in summaries.items():
        for metric, summary in metrics.items():
            again = both["summary"][condition][metric]
            assert again["mean"] == pytest.approx(summary["mean"], rel=1e-6)
            assert again["n"] == 2 * summary["n"]
    if pair:
        assert tests[pair]["p_value"] < before


def test_runs_that_cannot_be_combined_are_named():
    combined = _script("fidelity_tables").combined
    with pytest.raises(SystemExit, match="other settings than .*: isr"):
        combined([KEPT / "ood-fast-cnn-paper-1237.json", KEPT / "ood-fast-cnn-isrnet-1237.json"])
    with pytest.raises(SystemExit, match="the runs share seeds"):
        combined([KEPT / "ood-fast-cnn-paper.json", KEPT / "ood-fast-cnn-paper-1237.json"])
    with pytest.raises(SystemExit, match="runs of scaling cannot be combined"):
        combined([KEPT / "scaling-fast-cnn-paper.json"])


def test_fig1_scale_reads_goals_both_ways(tmp_path, capsys):
    """Two seeds of a hand-made retention metrics file: the seeds' mean per update, the last
    tenth of each phase, read as the value and as value / 0.4 (2.5 times), and the first
    socialization step at 2 and at 0.8 goals."""
    rows = ["seed,phase,condition,update,step,goals_per_episode"]
    for update in range(10):
        for seed, offset in ((1, 0.0), (2, 0.2)):
            rows.append(
                f"{seed},socialization,socialization,{update},{1000 * (update + 1)},"
                f"{0.3 * update + offset}"
            )
    for update in range(10):
        for seed in (1, 2):
            rows.append(f"{seed},autonomy,none,{update},{11000 + 1000 * update},0.5")
    (tmp_path / "metrics.csv").write_text("\n".join(rows) + "\n")
    fig1 = _script("fig1_scale")
    curves = fig1._curves(tmp_path)
    assert curves["socialization"][3] == (4000.0, pytest.approx(1.0))
    lines = set(fig1.rows("run", curves))
    # The last tenth is the last update: 0.3 * 9 + 0.1 = 2.8 goals, 7.0 on Fig. 1's reading;
    # 0.8 is first reached at update 3 (mean 1.0), 2 at update 7 (mean 2.2).
    assert lines == {
        "| run | socialization | 2.80 | 2.80 | 7.00 | 8,000 | 4,000 |",
        "| run | none | 0.50 | 0.50 | 1.25 | – | – |",
    }
    fig1.plot({"run": curves}, tmp_path / "scale.png")
    assert (tmp_path / "scale.png").stat().st_size > 0


def test_the_prosocial_rules_table_is_the_kept_runs():
    """docs/fidelity.md's table of the boulder world's original rules, one at a time and all but
    one: each row the kept run's oracle, none and isr arrivals, and each run the setting its row
    names over the `fast` preset, 5 seeds."""
    kept = ROOT / "benchmarks" / "results" / "prosocial-rules"
    section = "Prosocial: which original rule stops the learning"
    paper, original = (dataclasses.asdict(r) for r in (BoulderRules(), BoulderRules.original()))
    rows = {
        "base": ("the paper's model", {}),
        "all": ("`--profile original`", {}),
        "one-walls8": ("`n_walls=8` alone", {"n_walls": 8}),
        "one-nodrop": ("`actions=original` (no drop) alone", {"actions": "original"}),
        "one-partner": ("`partner=original` alone", {"partner": "original"}),
        "one-goalside": ("`learner_start=goal_side` alone", {"learner_start": "goal_side"}),
        "one-order": ("`order=random` alone", {"order": "random"}),
        "one-obs7": ("`observation=original` alone", {"observation": "original"}),
        "one-unscaled": ("`ppo.obs_scale=1` alone", {}),
        "loo-walls": ("... but `n_walls=7`", {"n_walls": 7}),
        "loo-nodrop": ("... but `actions=paper`", {"actions": "paper"}),
        "loo-partner": ("... but `partner=paper`", {"partner": "paper"}),
        "loo-goalside": ("... but `learner_start=any_leaf`", {"learner_start": "any_leaf"}),
        "loo-order": ("... but `order=learner_first`", {"order": "learner_first"}),
        "loo-obs7": ("... but `observation=paper`", {"observation": "paper"}),
    }
    for name, (label, changed) in rows.items():
        results = json.loads((kept / f"{name}.json").read_text())
        config = results["config"]
        from_original = name == "all" or name.startswith("loo-")
        assert config["preset"] == "fast" and results["seeds"] == list(range(1234, 1239))
        assert config.get("profile") == ("original" if from_original else None), name
        assert config["boulder"] == (original if from_original else paper) | changed, name
        assert config["ppo"]["obs_scale"] == (
            1.0 if from_original or name == "one-unscaled" else 0.1
        )
        cells = _docs_row(f"{label} |", width=4, section=section)
        assert cells[1:] == [
            "{mean:.3f} ± {se:.3f}".format(**results["summary"][c]["helps_per_episode"])
            for c in ("oracle", "none", "isr")
        ], name


def test_the_shortest_help_of_a_learner_facing_the_boulder_is_two_actions():
    """Partner, goal and learner on three neighbours of the boulder, the learner facing it: it
    picks the boulder up (the partner steps onto the boulder's cell), and the partner steps onto
    its goal: 2 actions, and none in 1."""
    env = BoulderEnv()
    state = env.reset(jax.random.key(0), env.make_params())
    walls = np.asarray(state.walls)
    boulder = np.asarray(state.boulder)
    around = [
        (heading, boulder + step)
        for heading, step in enumerate(HEADING_TO_VEC)
        if not walls[tuple(boulder + step)]
    ]
    assert len(around) >= 3  # the boulder lies on a junction
    (_, partner), (_, goal), (heading, learner) = around[:3]
    facing_boulder = (heading + 2) % 4
    near = env.state_from_layout(
        np.argwhere(walls[1:-1, 1:-1]) + 1, boulder, partner, goal, learner, facing_boulder
    )
    states = jax.tree.map(lambda x: x[None], near)
    script = _script("boulder_help_length")
    assert list(script.shortest_helps(env, states, depth=10)) == [2]
    assert list(script.shortest_helps(env, states, depth=1)) == [-1]


def test_a_random_learner_helps_less_often_from_the_goal_side():
    """4,000 episodes gave 0.196 and 0.075 arrivals per episode (docs/fidelity.md); 400 on
    seeds 0, 1, 2 gave 0.173 and 0.075, 0.213 and 0.090, 0.163 and 0.078 (the world and the
    draws are integer arithmetic: the same on every machine)."""
    script = _script("boulder_help_length")
    key = jax.random.key(0)
    paper = script.random_helps(BoulderEnv(), key, 400)
    goal_side = script.random_helps(
        BoulderEnv(rules=BoulderRules(learner_start="goal_side")), key, 400
    )
    assert paper.shape == goal_side.shape == (400,)
    assert paper.mean() > 0.1
    assert goal_side.mean() < 0.6 * paper.mean()


def test_compare_runs_names_what_differs(tmp_path):
    compare = _script("compare_runs")
    results = {
        "summary": {"isr": {"mean": 1.5}},
        "config": {"seeds": 2},
        "timings": {"total_s": 3.0},
        "versions": {"jax": "0.10.2"},
    }
    runs = {}
    for name, timing, extra in (("a", 3.0, {}), ("b", 4.0, {"isr": {"members": 1}})):
        run = tmp_path / name / "retention"
        run.mkdir(parents=True)
        (run / "metrics.csv").write_text("seed,goals\n1234,0.5\n")
        saved = {**results, "timings": {"total_s": timing}}
        saved["config"] = {**results["config"], **extra}
        (run / "results.json").write_text(json.dumps(saved))
        runs[name] = run.parent
    # Timings, versions and a setting that only one run has (added later) are not differences.
    assert compare.compare(runs["a"], runs["b"]) == [
        "retention: same (metrics.csv equal; 2 results.json values, 0 differ; "
        "1 settings in one run only)"
    ]
    changed = json.loads((runs["b"] / "retention" / "results.json").read_text())
    changed["summary"]["isr"]["mean"] = 1.25
    (runs["b"] / "retention" / "results.json").write_text(json.dumps(changed))
    (runs["b"] / "retention" / "metrics.csv").write_text("seed,goals\n1234,0.75\n")
    different = (
        "retention: DIFFERENT (metrics.csv differs; 2 results.json values, 1 differ: "
        "/summary/isr/mean; 1 settings in one run only)"
    )
    assert compare.compare(runs["a"], runs["b"]) == [different]
    # Two single runs are compared as they are.
    assert compare.compare(runs["a"] / "retention", runs["b"] / "retention") == [different]
