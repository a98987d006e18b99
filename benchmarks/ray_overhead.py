"""Ray's overhead against the local backend, on the same small sweep, on this machine.

    python benchmarks/ray_overhead.py [--cells 4] [--seeds 2] [--steps 20480] [--repeats 1]

The sweep: retention with `--cells` learning rates (cells that share no phase, so that the local
backend cannot reuse one cell's work in another), each `--seeds` seeds and `--steps`
socialization and autonomy steps. Modes, each a fresh `internalize sweep` command timed from
start to exit (wall time, Ray's start included):

- `local`: the cells one after another in one process;
- `ray-N`: a Ray cluster of N CPUs on this machine, started before the command (`ray start
  --head --num-cpus N`, as a cluster is there before its users come) and stopped after it,
  each cell a task with one CPU, for N = 1 and 2 (and more where this machine has them).

Prints one JSON line per run and appends it to benchmarks/results/ray_overhead.jsonl.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "ray_overhead.jsonl"


def sweep(mode: str, cells: int, seeds: int, steps: int, out: Path) -> dict:
    rates = ",".join(f"{3e-4 * (1 + i / 4):.6g}" for i in range(cells))
    command = [
        sys.executable, "-m", "internalize.cli", "sweep", "retention",
        "--grid", f"ppo.learning_rate={rates}", "--seeds", str(seeds),
        "--set", f"socialize_steps={steps}", "--set", f"autonomy_steps={steps}",
        "--out", str(out), "--quiet",
    ]  # fmt: skip
    environment = {**os.environ, "RAY_AUTH_MODE": "disabled"}  # a cluster on this machine only
    if mode.startswith("ray-"):
        port = "6391"
        start = ["ray", "start", "--head", "--port", port, "--node-ip-address", "127.0.0.1"]
        start += ["--num-cpus", mode.split("-")[1], "--include-dashboard", "false"]
        subprocess.run(start, check=True, capture_output=True, env=environment)
        command += ["--backend", "ray", "--address", f"127.0.0.1:{port}"]
    try:
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=environment)
        wall = time.perf_counter() - started
    finally:
        if mode.startswith("ray-"):
            subprocess.run(["ray", "stop", "--force"], capture_output=True, env=environment)
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{done.stderr[-3000:]}")
    return {"mode": mode, "cells": cells, "seeds": seeds, "steps": steps, "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20480)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--modes", nargs="*", help="default: local and ray-N for N = 1, 2, ...")
    parser.add_argument("--code", default="", help="a label of the code measured (a commit)")
    args = parser.parse_args()
    workers = [n for n in (1, 2, 4, 8) if n <= len(os.sched_getaffinity(0))]
    modes = args.modes or ["local", *(f"ray-{n}" for n in workers)]
    RESULTS.parent.mkdir(exist_ok=True)
    for repeat in range(args.repeats):
        for mode in modes:  # interleaved, so that a slow spell of the machine hits every mode
            with tempfile.TemporaryDirectory() as folder:
                record = sweep(mode, args.cells, args.seeds, args.steps, Path(folder) / "sweep")
            record.update(repeat=repeat, date=time.strftime("%Y-%m-%d"), cpus=os.cpu_count())
            record.update(code=args.code)
            print(json.dumps(record), flush=True)
            with RESULTS.open("a") as file:
                file.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
