"""Whether two run directories hold the same numbers: per experiment, `metrics.csv` byte for byte
and every value of `results.json` but its timings and versions. Its `config` counts where both
runs have a setting; settings that only one has (added by a later version, with the default
that was fixed before) are counted apart, not as differences.

    python benchmarks/compare_runs.py RUN_A RUN_B

Both may be `all` runs (one subdirectory per experiment: the experiments both finished are
compared) or single experiments' runs. Prints a line per experiment and exits 1 if any differ,
so that a redesign can be checked against the numbers it had before (same machine).
"""

import argparse
import json
import sys
from pathlib import Path

LEFT_OUT = ("timings", "versions")
"""Keys of results.json that differ between runs of the same numbers."""


def values(tree, path: str = "") -> dict[str, object]:
    """Every leaf of a JSON tree by its path (`/a/b/0`)."""
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, list):
        items = enumerate(tree)
    else:
        return {path: tree}
    found = {}
    for key, value in items:
        found |= values(value, f"{path}/{key}")
    return found


def numbers(run: Path) -> dict[str, object]:
    results = json.loads((run / "results.json").read_text())
    return values({key: value for key, value in results.items() if key not in LEFT_OUT})


def differences(x: dict, y: dict) -> tuple[list[str], int]:
    """The paths whose values differ, and how many settings only one of `x`, `y` has."""
    keys = x.keys() | y.keys()
    one_sided = {key for key in keys if key.startswith("/config/") and (key in x) != (key in y)}
    return sorted(k for k in keys - one_sided if x.get(k, ...) != y.get(k, ...)), len(one_sided)


def compare(a: Path, b: Path) -> list[str]:
    """A line per experiment of `a` that has finished: the same numbers in `b`, or which differ."""
    single = (a / "metrics.csv").exists()
    names = [""] if single else sorted(p.name for p in a.iterdir() if (p / "results.json").exists())
    lines = []
    for name in names:
        first, second = a / name, b / name
        if not (second / "results.json").exists():
            lines.append(f"{name or b}: not finished in {b}")
            continue
        same_csv = (first / "metrics.csv").read_bytes() == (second / "metrics.csv").read_bytes()
        x, y = numbers(first), numbers(second)
        differ, one_sided = differences(x, y)
        verdict = "same" if same_csv and not differ else "DIFFERENT"
        lines.append(
            f"{name or a.name}: {verdict} (metrics.csv {'equal' if same_csv else 'differs'}; "
            f"{len(x)} results.json values, {len(differ)} differ{': ' if differ else ''}"
            f"{', '.join(differ[:5])}; {one_sided} settings in one run only)"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    args = parser.parse_args()
    lines = compare(args.a, args.b)
    print("\n".join(lines))
    return 0 if lines and all(": same (" in line for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main())
