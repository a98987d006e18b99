"""How often does vmapped training hang XLA's CPU runtime? A repro and its rate per setting.

Each try is a fresh process (`--worker`) that socializes `--runs` learners side by side with
`vmap` (`PPOConfig.parallel_runs=True`) for a few updates, then trains their ISRs vmapped too:
the two phases that hung in our runs. A try whose process uses no CPU at all for `--stall`
seconds is a hang (every thread waiting; compiling and computing always use CPU) and is killed;
so is a try still running after `--timeout` seconds (counted as slow).

Settings (`--modes`), all vmapped except the control:
- `flax_init`: Flax's own orthogonal initializer, as before the fix: under vmap its QR is one
  batched LAPACK call that waits on XLA's CPU thread pool from inside that pool;
- `flax_init_no_eigen_threads`: the same with `XLA_FLAGS=--xla_cpu_multi_thread_eigen=false`;
- `flax_init_sync_dispatch`: the same with `jax_cpu_enable_async_dispatch` off;
- `fixed`: `internalize.blocks.orthogonal`, which draws a batch of keys one by one;
- `lax_map`: one run after another (the control; the default of `internalize`).

    python benchmarks/hang_repro.py --tries 50 --out benchmarks/results/hang_repro.jsonl

Results go to a JSON-lines file, one line per try, appended as they come (so an interrupted
measurement keeps what it has); the summary is printed at the end.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

FLAX_INIT = {"REPRO_FLAX_INIT": "1"}
MODES = {
    "flax_init": (FLAX_INIT, True),
    "flax_init_no_eigen_threads": (
        {**FLAX_INIT, "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false"},
        True,
    ),
    "flax_init_sync_dispatch": ({**FLAX_INIT, "REPRO_SYNC_DISPATCH": "1"}, True),
    "fixed": ({}, True),
    "lax_map": ({}, False),
}


def worker(network: str, runs: int, updates: int, parallel: bool) -> None:
    import jax

    if os.environ.get("REPRO_SYNC_DISPATCH"):
        jax.config.update("jax_cpu_enable_async_dispatch", False)
    if os.environ.get("REPRO_FLAX_INIT"):
        import flax.linen as nn

        import internalize.blocks
        import internalize.isr.model
        import internalize.learners.networks

        for module in (internalize.blocks, internalize.isr.model, internalize.learners.networks):
            module.orthogonal = nn.initializers.orthogonal
    from internalize.envs.goals import GoalsEnv
    from internalize.experiments.phases import seed_keys, socialize, train_isr
    from internalize.isr.train import ISR_PRESETS
    from internalize.learners.ppo import PPO, PRESETS

    preset = "fast" if network == "mlp" else "paper"
    config = PRESETS[preset].replace(parallel_runs=parallel)
    if preset == "paper":  # short rollouts so that a try takes seconds, not minutes
        config = config.replace(num_steps=256)
    env = GoalsEnv()
    ppo = PPO(config, env, env.make_params())
    key_runs, key_isr = seed_keys(list(range(runs)))
    started = time.perf_counter()
    _, metrics, dataset, _ = socialize(ppo, key_runs, updates)
    print(f"socialized in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    isr_config = ISR_PRESETS["fast"]
    if parallel:
        from internalize.isr.train import make_isr_train

        train = jax.jit(jax.vmap(make_isr_train(isr_config, dataset.size)))
        result = jax.block_until_ready(train(key_isr, dataset))
    else:
        result, _ = train_isr(isr_config, key_isr, dataset)
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - started,
                "goals": float(metrics.goals_per_episode[:, -1].mean()),
                "isr_test_mse": float(result.test_mse.mean()),
            }
        )
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` and its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_try(mode: str, args) -> dict:
    extra, parallel = MODES[mode]
    env = {**os.environ, **extra}
    if "XLA_FLAGS" in extra and os.environ.get("XLA_FLAGS"):
        env["XLA_FLAGS"] = f"{os.environ['XLA_FLAGS']} {extra['XLA_FLAGS']}"
    command = [
        sys.executable,
        __file__,
        "--worker",
        f"--network={args.network}",
        f"--runs={args.runs}",
        f"--updates={args.updates}",
        f"--parallel={int(parallel)}",
    ]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    used, idle_since = 0.0, time.perf_counter()
    while process.poll() is None:
        time.sleep(0.5)
        now = time.perf_counter()
        try:
            cpu = cpu_seconds(process.pid)
        except OSError:  # it ended between poll and read
            continue
        if cpu > used:
            used, idle_since = cpu, now
        stalled = now - idle_since >= args.stall
        if stalled or now - started >= args.timeout:
            process.kill()
            process.communicate()
            outcome = "hang" if stalled else "slow"
            return {"mode": mode, "outcome": outcome, "cpu_s": used, "wall_s": now - started}
    out, err = process.communicate()
    wall = time.perf_counter() - started
    if process.returncode != 0:
        return {"mode": mode, "outcome": "error", "stderr": err.decode()[-2000:], "wall_s": wall}
    return {
        "mode": mode,
        "outcome": "ok",
        "wall_s": wall,
        **json.loads(out.decode().splitlines()[-1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--parallel", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--network", default="mlp", choices=["mlp", "paper_cnn"])
    parser.add_argument("--runs", type=int, default=6, help="runs vmapped side by side")
    parser.add_argument("--updates", type=int, default=4, help="PPO updates per run")
    parser.add_argument("--tries", type=int, default=50, help="tries per mode")
    parser.add_argument(
        "--modes", default=",".join(MODES), help="comma-separated, of: " + ", ".join(MODES)
    )
    parser.add_argument("--stall", type=float, default=10.0, help="seconds without CPU use: a hang")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds before a try is killed"
    )
    parser.add_argument("--out", type=Path, default=Path("hang_repro.jsonl"))
    args = parser.parse_args()
    if args.worker:
        worker(args.network, args.runs, args.updates, bool(args.parallel))
        return
    modes = args.modes.split(",")
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        parser.error(f"unknown mode(s) {unknown}; known: {list(MODES)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    setting = {"network": args.network, "runs": args.runs, "updates": args.updates}
    # Modes interleaved try by try, so that whatever else the machine does falls on all alike.
    for attempt in range(args.tries):
        for mode in modes:
            record = {**one_try(mode, args), **setting, "try": attempt}
            with args.out.open("a") as out:
                out.write(json.dumps(record) + "\n")
            print(json.dumps(record), flush=True)
    summarize(args.out)


def summarize(path: Path) -> None:
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    table: dict[tuple, dict[str, list]] = {}
    for record in records:
        key = (record["mode"], record["network"], record["runs"], record["updates"])
        table.setdefault(key, {}).setdefault(record["outcome"], []).append(record["wall_s"])
    for key, outcomes in sorted(table.items()):
        ok = outcomes.get("ok", [])
        median = sorted(ok)[len(ok) // 2] if ok else float("nan")
        counts = {name: len(values) for name, values in outcomes.items()}
        print(key, counts, f"median ok wall {median:.1f} s")


if __name__ == "__main__":
    main()
