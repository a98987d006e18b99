"""A sweep whose cells compute their phases together, against the same sweep cell by cell.

    python benchmarks/sweep_batching.py BEFORE_TREE AFTER_TREE [--repeats 2]

Runs one `internalize sweep retention` command (a 2 x 2 grid over `isr_threshold` and
`schedule`, 2 seeds, 8,192 steps per phase) with the package of each source tree
(`TREE/src` first on the path; e.g. a `git worktree` of the commit before batching), modes
interleaved, and compares their cells' metrics.csv byte for byte. Prints one JSON line per run
and appends it to benchmarks/results/sweep_batching.jsonl.
"""

import argparse
import filecmp
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "sweep_batching.jsonl"
GRID = ["--grid", "isr_threshold=0.1,0.3", "--grid", "schedule=two_phase,fading"]
SETTINGS = ["--seeds", "2", "--set", "socialize_steps=8192", "--set", "autonomy_steps=8192"]
SETTINGS += ["--set", "schedule.fade_steps=4096", "--quiet"]


def sweep(tree: Path, out: Path) -> float:
    command = [sys.executable, "-m", "internalize.cli", "sweep", "retention", *GRID, *SETTINGS]
    environment = {**os.environ, "PYTHONPATH": str(tree / "src")}
    started = time.perf_counter()
    done = subprocess.run(
        [*command, "--out", str(out)], capture_output=True, text=True, env=environment
    )
    if done.returncode != 0:
        raise SystemExit(f"{tree} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    RESULTS.parent.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(args.repeats):
            outs = {}
            for mode, tree in (("cell by cell", args.before), ("together", args.after)):
                outs[mode] = Path(folder) / f"{repeat}-{mode.replace(' ', '-')}"
                wall = sweep(tree, outs[mode])
                record = {"mode": mode, "tree": str(tree), "wall_s": wall, "repeat": repeat}
                record.update(date=time.strftime("%Y-%m-%d"), cpus=os.cpu_count())
                print(json.dumps(record), flush=True)
                with RESULTS.open("a") as file:
                    file.write(json.dumps(record) + "\n")
            cells = sorted(path.name for path in (outs["together"] / "cells").iterdir())
            same = all(
                filecmp.cmp(
                    outs[m] / "cells" / c / "metrics.csv",
                    outs["together"] / "cells" / c / "metrics.csv",
                    shallow=False,
                )
                for m in ("cell by cell",)
                for c in cells
            )
            print(json.dumps({"repeat": repeat, "cells": len(cells), "metrics_identical": same}))


if __name__ == "__main__":
    main()
