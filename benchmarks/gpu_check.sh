#!/usr/bin/env bash
# The paper on one GPU (issue 40): `reproduce paper` with `fast` and with `fast-cnn` at 10 seeds,
# with the device's own jax (pip keeps an installed jax that the pin admits), then per preset the
# wall time, each experiment's time and steps/s, and the peak GPU memory (nvidia-smi, every
# 0.5 s). Written for a lent GPU machine (`device` tool), where it should take under 8 minutes
# on one H100; figures go to benchmarks/RESULTS.md.
#
#   bash benchmarks/gpu_check.sh [OUT]         # default OUT: runs/gpu-check
#
# DEVICE=cpu PRESETS=fast SEEDS=1 EXTRA=--quick NO_INSTALL=1 runs the same script on a CPU with
# the installed package (a check of the script itself, not a measurement).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/gpu-check}
device=${DEVICE:-gpu}
presets=${PRESETS:-fast fast-cnn}
mkdir -p "$out"
[ -n "${NO_INSTALL:-}" ] || pip install -q . >"$out/install.log" 2>&1
python -c "import jax; print('jax', jax.__version__, jax.devices())" | tee "$out/devices.txt"
sampler=""
if [ "$device" = gpu ] && command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 >"$out/memory.csv" &
    sampler=$!
fi
for preset in $presets; do
    start=$(date +%s.%N)
    # shellcheck disable=SC2086  # EXTRA is a list of options
    internalize reproduce paper --preset "$preset" --device "$device" --seeds "${SEEDS:-10}" \
        --compile-cache off --out "$out/$preset" --quiet ${EXTRA:-} >"$out/$preset.json" || true
    echo "$preset $(python -c "print(f'{$(date +%s.%N) - $start:.1f}')")" >>"$out/wall.txt"
done
[ -n "$sampler" ] && kill "$sampler"
python - "$out" $presets <<'PY'
import json, sys
from pathlib import Path

out, presets = Path(sys.argv[1]), sys.argv[2:]
walls = dict(line.split() for line in (out / "wall.txt").read_text().splitlines())
memory = out / "memory.csv"
if memory.is_file() and memory.read_text().split():
    print(f"peak GPU memory: {max(map(int, memory.read_text().split())) / 1024:.2f} GiB")
for preset in presets:
    run = out / preset
    results = run / "results.json"
    if not results.is_file():
        print(f"{preset}: not finished ({walls.get(preset)} s); see {out / (preset + '.json')}")
        continue
    status = json.loads(results.read_text())["status"]
    print(f"{preset}: {walls[preset]} s with rendering and report; {status}")
    for name in status:
        timings = json.loads((run / name / "results.json").read_text())["timings"]
        phases = [p for p in timings.values() if isinstance(p, dict) and not p.get("shared")]
        steps, run_s = sum(p["steps"] for p in phases), sum(p["run_s"] for p in phases)
        compile_s = sum(p["compile_s"] for p in phases)
        rate = f"{steps / run_s:,.0f} steps/s" if run_s else "-"
        print(f"  {name}: {timings['total_s']:.1f} s, compile {compile_s:.1f} s, {rate}")
PY
