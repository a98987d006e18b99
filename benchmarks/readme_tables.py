"""Print the README's result tables (markdown) from an `all` run directory.

    python benchmarks/readme_tables.py runs/all-DATE-TIME

Every number the README shows for the experiments comes from the run's `results.json` files
through this script, with the machine and date the run recorded.
"""

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from internalize.report import _headline_rows, _read_run


def _load(run: Path, name: str) -> dict:
    return json.loads((run / name / "results.json").read_text())


def _ms(summary: dict, digits: int = 3) -> str:
    """mean ± standard error."""
    return f"{summary['mean']:.{digits}f} ± {summary['se']:.{digits}f}"


def _e(value: float) -> str:
    return f"{value:.1e}"


def provenance(run: Path) -> str:
    versions = json.loads((run / "retention" / "versions.json").read_text())
    day = datetime.fromtimestamp((run / "results.json").stat().st_mtime, UTC).strftime("%Y-%m-%d")
    return (
        f"{versions['cpu_model']} ({versions['cpu_isa']}), {versions['cpu_count']} cores, "
        f"jax {versions['jax']}, {day}"
    )


def headline(run: Path) -> str:
    _, experiments = _read_run(run)
    lines = ["| experiment | finding | ours | published |", "|---|---|---|---|"]
    for experiment in experiments:
        for i, (label, ours, theirs) in enumerate(_headline_rows(experiment)):
            name = experiment["name"] if i == 0 else ""
            lines.append(f"| {name} | {label} | {ours} | {theirs} |")
    return "\n".join(lines)


def retention(run: Path) -> str:
    r = _load(run, "retention")
    s, ratio = r["summary"], r["goals_ratio_to_oracle"]
    rows = ["| condition | goals per episode | return (true reward) |", "|---|---|---|"]
    for condition in ("oracle", "none", "isr"):
        goals = _ms(s[condition]["goals_per_episode"], 3 if condition == "none" else 2)
        if condition != "oracle":
            goals += f" ({100 * ratio[f'{condition}/oracle']:.1f}% of oracle)"
        rows.append(f"| `{condition}` | {goals} | {_ms(s[condition]['return'])} |")
    test = r["isr_model"]["test_mse"]
    rows.append("")
    rows.append(
        f"ISR test error {_e(min(test))} to {_e(max(test))} (mean {_e(sum(test) / len(test))}); "
        f"wall {r['timings']['total_s']:.0f} s"
    )
    return "\n".join(rows)


def _welch(test: dict) -> str:
    return f"p = {test['p_value']:.2g}, Hedges' g {test['effect_size']:.2f}"


def ood(run: Path) -> str:
    r = _load(run, "ood")
    s, t, pub = r["summary"], r["tests"], r["published"]
    rows = ["| condition | ours | published |", "|---|---|---|"]
    for condition in ("frozen", "isr", "oracle"):
        theirs = pub["return"][condition]
        theirs = f"{theirs['mean']:.3f} ± {theirs['se']:.3f}"
        rows.append(f"| `{condition}` | {_ms(s[condition]['return'])} | {theirs} |")
    ratio = r["return_ratio_to_oracle"]["isr/oracle"]
    theirs = {pair: test["p_value"] for pair, test in pub["tests"].items()}
    rows.append(
        f"| `isr` vs `frozen` (Welch) | {_welch(t['isr vs frozen'])} | "
        f"p = {theirs['isr vs frozen']} |"
    )
    rows.append(
        f"| `isr` vs `oracle` (Welch) | p = {t['isr vs oracle']['p_value']:.2f}; `isr` at "
        f"{100 * ratio:.1f}% of `oracle` | p = {theirs['isr vs oracle']} |"
    )
    return "\n".join(rows)


def layouts(run: Path) -> str:
    r = _load(run, "layouts")
    rows = [
        "| layout | `frozen` | `oracle` | `isr` | `isr` vs `frozen` (Welch p) |",
        "|---|---|---|---|---|",
    ]
    for layout, part in r["per_task"].items():
        s = part["summary"]
        cells = " | ".join(_ms(s[c]["return"]) for c in ("frozen", "oracle", "isr"))
        p = part["tests"]["isr vs frozen"]["p_value"]
        rows.append(f"| {layout.replace('_', ' ')} | {cells} | {p:.1e} |")
    pooled = r["pooled"]
    for pair in ("isr vs frozen", "isr vs oracle"):
        test = pooled["tests"][pair]
        rows.append(
            f"\npooled {pair}: difference {test['difference']:.3f} (95% CI {test['ci_low']:.3f} "
            f"to {test['ci_high']:.3f}), p = {test['p_value']:.2g}"
        )
    return "\n".join(rows)


def scaling(run: Path) -> str:
    r = _load(run, "scaling")
    pub = r["published"]
    rows = [
        "| ISR training samples | test MSE | train MSE | published test MSE |",
        "|---:|---|---|---|",
    ]
    published = dict(zip(pub["train_samples"], pub["test_mse"], strict=True))
    for count, samples in zip(r["sample_counts"], r["train_samples"], strict=True):
        s = r["summary"][str(count)]
        theirs = published.get(samples)
        rows.append(
            f"| {samples:,} | {_e(s['test_mse']['mean'])} ± {_e(s['test_mse']['se'])} | "
            f"{_e(s['train_mse']['mean'])} ± {_e(s['train_mse']['se'])} | "
            f"{theirs:.3g} |"
        )
    slope = r["tests"]["log-log slope"]["summary"]
    first, last = (
        r["summary"][str(r["sample_counts"][0])],
        r["summary"][str(r["sample_counts"][-1])],
    )
    ratios = [r["summary"][str(c)]["test_over_train"]["mean"] for c in r["sample_counts"]]
    rows.append(
        f"\nslope {slope['mean']:.2f} (95% CI {slope['ci_low']:.2f} to {slope['ci_high']:.2f}); "
        f"fall {first['test_mse']['mean'] / last['test_mse']['mean']:.0f}x; "
        f"test/train per count {', '.join(f'{x:.2f}' for x in ratios)}"
    )
    return "\n".join(rows)


def hacking(run: Path) -> str:
    r = _load(run, "hacking")
    s, t = r["summary"], r["tests"]
    columns = ["`isr_partial` early", "late", "p", "`isr_full` early", "late", "p"]
    rows = ["| | " + " | ".join(columns) + " |", "|---|---|---|---|---|---|---|"]
    labels = {
        "internal_reward": "internal reward per episode",
        "goals_per_episode": "goals per episode (true)",
        "looping": "looping (share of steps)",
    }
    for metric, label in labels.items():
        cells = []
        for condition in ("isr_partial", "isr_full"):
            digits = 3 if metric == "looping" else 2
            early = s[condition][f"{metric}_early"]["mean"]
            late = s[condition][f"{metric}_late"]["mean"]
            p = t[f"{condition}: {metric} late vs early"]["p_value"]
            cells += [f"{early:.{digits}f}", f"{late:.{digits}f}", f"{p:.2g}"]
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    test = {c: m["test_mse"] for c, m in r["isr_model"].items()}
    rows.append(
        "\nISR test MSE, mean over seeds: "
        + ", ".join(
            f"{c} {_e(sum(v) / len(v))} ({r['isr_model'][c]['samples']:,} samples)"
            for c, v in test.items()
        )
    )
    return "\n".join(rows)


def prosocial(run: Path) -> str:
    r = _load(run, "prosocial")
    s, t, ratio = r["summary"], r["tests"], r["helps_ratio_to_oracle"]
    rows = ["| condition | partner reaches its goal, per episode | return (true reward) |"]
    rows.append("|---|---|---|")
    for condition in ("oracle", "none", "isr"):
        helps = _ms(s[condition]["helps_per_episode"], 2)
        if condition != "oracle":
            p = t[f"{condition} vs oracle"]["p_value"]
            helps += f" ({100 * ratio[f'{condition}/oracle']:.1f}% of oracle; Welch p = {p:.2g})"
        rows.append(f"| `{condition}` | {helps} | {_ms(s[condition]['return'])} |")
    isr = r["conditions"]["isr"]
    oracle = r["conditions"]["oracle"]
    per_seed = [
        a / b for a, b in zip(isr["helps_per_episode"], oracle["helps_per_episode"], strict=True)
    ]
    internal = sum(isr["internal_reward"]) / len(isr["internal_reward"])
    social = sum(isr["social_reward"]) / len(isr["social_reward"])
    social_end = sum(r["socialization"]["helps_per_episode"]) / len(
        r["socialization"]["helps_per_episode"]
    )
    rows.append(
        f"\nper seed isr/oracle {100 * min(per_seed):.0f}% to {100 * max(per_seed):.0f}%; isr "
        f"internal reward {internal:.2f} vs true social {social:.2f} per episode; socialization "
        f"ends at {social_end:.2f}; wall {r['timings']['total_s']:.0f} s"
    )
    return "\n".join(rows)


def departure(run: Path) -> str:
    r = _load(run, "departure")
    rows = [
        "| socialization (steps) | `oracle` | `none` | `isr` | isr/oracle (95% CI) | ISR test MSE "
        "| p isr > none |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in r["critical_period"].values():
        goals, ratio = row["goals_per_episode"], row["isr/oracle"]
        rows.append(
            f"| {row['socialize_steps']:,} | "
            + " | ".join(_ms(goals[c], 2) for c in ("oracle", "none", "isr"))
            + f" | {ratio['mean']:.2f} ({ratio['ci_low']:.2f}-{ratio['ci_high']:.2f}) | "
            f"{_e(row['isr_test_mse']['mean'])} | {row['isr vs none']['p_value']:.2g} |"
        )
    rows += [
        "",
        "| way of leaving | effort (steps) | retention | ISR test MSE | against | p (paired) |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for name, row in r["schedules"].items():
        test = row.get("vs abrupt")
        p = "–" if test is None or test["p_value"] is None else f"{test['p_value']:.2g}"
        never = f" ({row['never ready']} never ready)" if row.get("never ready") else ""
        rows.append(
            f"| {name}{never} | {row['effort']['mean']:,.0f} | {_ms(row['retention'], 2)} | "
            f"{_e(row['isr_test_mse']['mean'])} | {row.get('against', '–')} | {p} |"
        )
    rows.append(f"\nwall {r['timings']['total_s']:.0f} s")
    return "\n".join(rows)


def main(run_dir: str) -> None:
    run = Path(run_dir)
    print(f"machine: {provenance(run)}\n")
    for part in (headline, retention, ood, layouts, scaling, hacking, prosocial, departure):
        print(f"## {part.__name__}\n\n{part(run)}\n")


if __name__ == "__main__":
    main(sys.argv[1])
