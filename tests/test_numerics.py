"""The deterministic mode, and a golden run that any machine running the suite checks.

The golden values are the tiny `all` run's (deterministic mode), one folder per CPU that wrote
them (`tests/golden/<cpu_id>/`): `retention_quick.json` holds every row of retention's
metrics.csv, `all_quick.json` every experiment's numbers, each with the machine and versions that
made them. Write this machine's, or rewrite them after a change that is meant to move numbers,
with `INTERNALIZE_UPDATE_GOLDEN=1 python -m pytest tests/test_numerics.py -k golden`.
"""

import csv
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from internalize import numerics

GOLDEN = Path(__file__).parent / "golden"
"""One folder per CPU (its `cpu_id`) that golden numbers were written on."""


FINGERPRINT = (
    "cpu_model",
    "cpu_id",
    "cpu_isa",
    "xla_flags",
    "jax",
    "jaxlib",
    "flax",
    "optax",
    "numpy",
)
"""What must match for the golden numbers to be required bit for bit."""


def test_isa_cap_is_added_on_x86_only(monkeypatch):
    monkeypatch.setattr(numerics.platform, "machine", lambda: "x86_64")
    assert numerics.deterministic_flags("") == "--xla_cpu_max_isa=AVX2"
    assert numerics.deterministic_flags("--a=1") == "--a=1 --xla_cpu_max_isa=AVX2"
    # A cap of the user's own is kept.
    assert numerics.deterministic_flags("--xla_cpu_max_isa=AVX") == "--xla_cpu_max_isa=AVX"
    monkeypatch.setattr(numerics.platform, "machine", lambda: "aarch64")
    assert numerics.deterministic_flags("--a=1") == "--a=1"


def test_the_mode_is_refused_once_jax_has_started(monkeypatch):
    import jax

    jax.devices()  # starts the backend, if no test has yet
    monkeypatch.setenv("XLA_FLAGS", "")
    with pytest.raises(RuntimeError, match="before JAX starts its backend"):
        numerics.make_deterministic()
    assert os.environ["XLA_FLAGS"] == ""


ON_AN_ACCELERATOR = """
import json, os
from internalize import numerics
before = sorted(os.sched_getaffinity(0)), os.environ.get("XLA_FLAGS", "")
numerics.make_deterministic()
print(json.dumps([before, [sorted(os.sched_getaffinity(0)), os.environ.get("XLA_FLAGS", "")]]))
"""


@pytest.mark.parametrize("platforms", ["cuda", "tpu,cpu"])
def test_on_an_accelerator_the_mode_changes_nothing(platforms):
    """Pinning and CPU flags are for the CPU: where JAX will run on a GPU or TPU the mode
    leaves the CPUs the process may use and XLA_FLAGS as they were (JAX is not started)."""
    env = {**os.environ, "JAX_PLATFORMS": platforms, "XLA_FLAGS": "--a=1"}
    done = subprocess.run(
        [sys.executable, "-c", ON_AN_ACCELERATOR], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    before, after = json.loads(done.stdout)
    assert after == before and before[1] == "--a=1"


def test_the_accelerator_is_found_without_starting_jax(monkeypatch):
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    assert numerics.accelerator() is None
    monkeypatch.setenv("JAX_PLATFORMS", "rocm")
    assert numerics.accelerator() == "gpu"
    monkeypatch.delenv("JAX_PLATFORMS")

    class Distribution:
        def __init__(self, name):
            self.metadata = {"Name": name}

    installed = [Distribution("jax"), Distribution("jax-cuda12-pjrt")]
    monkeypatch.setattr(numerics.metadata, "distributions", lambda: installed)
    devices = {"/dev/nvidia[0-9]*": ["/dev/nvidia0"]}
    monkeypatch.setattr(numerics.glob, "glob", lambda pattern: devices.get(pattern, []))
    assert numerics.accelerator() == "gpu"
    devices.clear()  # the plugin without a device: the CPU
    assert numerics.accelerator() is None
    devices["/dev/accel[0-9]*"] = ["/dev/accel0"]  # a TPU's device, but no libtpu
    assert numerics.accelerator() is None
    installed.append(Distribution("libtpu"))
    assert numerics.accelerator() == "tpu"


def _rows(run_dir: Path) -> list[dict]:
    """metrics.csv of `run_dir`, numbers as floats."""
    with open(run_dir / "metrics.csv") as table:
        rows = list(csv.DictReader(table))
    text = ("phase", "condition")
    return [{k: v if k in text else float(v) for k, v in row.items()} for row in rows]


@pytest.fixture(scope="module")
def tiny_all_run(all_run) -> Path:
    """The tiny `all` run; these tests skip when the suite was given a sample run instead."""
    if os.environ.get("INTERNALIZE_SAMPLE_ALL"):
        pytest.skip("golden numbers are those of the tiny `all` run, not of a sample")
    return all_run


@pytest.fixture(scope="module")
def single_retention(tiny_all_run, tmp_path_factory) -> Path:
    """`reproduce retention --deterministic` with the settings of the `all` run's retention, as
    a command of its own started with every CPU this process may use (the `all` run's worker
    was given one)."""
    out = tmp_path_factory.mktemp("single") / "retention"
    config = json.loads((tiny_all_run / "retention" / "config.json").read_text())
    command = [
        *("reproduce", "retention", "--deterministic", "--quiet", "--out", str(out)),
        *("--seeds", str(config["seeds"]), "--first-seed", str(config["first_seed"])),
        *("--socialize-steps", str(config["socialize_steps"])),
        *("--autonomy-steps", str(config["autonomy_steps"])),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "internalize.cli", *command], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def test_the_deterministic_mode_ignores_the_cpus_it_is_given(tiny_all_run, single_retention):
    """Without the mode, the ISR's training gives other digits on one CPU than on two (measured:
    `isr` differs from its first update, README); with it, a command started with every CPU
    repeats the digits of `reproduce all`'s worker, which was given one."""
    assert _rows(single_retention) == _rows(tiny_all_run / "retention")
    saved = json.loads((single_retention / "versions.json").read_text())
    assert saved["cpus_used"] == "1"
    # The AVX2 cap on x86-64, or the user's own cap (the suite run with XLA_FLAGS set).
    assert saved["xla_flags"] == numerics.deterministic_flags(os.environ.get("XLA_FLAGS", ""))


def _machine(run_dir: Path) -> dict:
    """What of `run_dir`'s versions.json must match for golden numbers to be required."""
    saved = json.loads((run_dir / "versions.json").read_text())
    return {key: saved.get(key) for key in FINGERPRINT}


def _golden(name: str, machine: dict, numbers: dict) -> tuple[dict, bool]:
    """The golden file `name` of `machine` (written from `numbers` first, under
    INTERNALIZE_UPDATE_GOLDEN), and whether it is this machine's: where no file is, another
    machine's, whose layout and first update the test still compares."""
    if os.environ.get("INTERNALIZE_UPDATE_GOLDEN"):
        folder = GOLDEN / re.sub(r"[^A-Za-z0-9]+", "-", machine["cpu_id"]).strip("-")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.json").write_text(json.dumps({"machine": machine, **numbers}) + "\n")
    found = [json.loads(path.read_text()) for path in sorted(GOLDEN.glob(f"*/{name}.json"))]
    assert found, f"no golden file {name}.json under {GOLDEN}"
    mine = [golden for golden in found if golden["machine"] == machine]
    return (mine or found)[0], bool(mine)


def test_golden_numbers(tiny_all_run):
    """The `all` run's retention (2 seeds, `--quick`), golden. On the machine and versions that
    wrote a golden file: every number bit for bit. On any other: the first socialization update
    within 1e-4 (measured: other instruction sets, AVX and SSE4.2 against AVX2, moved it by at
    most 1.1e-6 relative, before later updates drift apart), and a warning says whether this
    machine repeated the golden numbers exactly."""
    run_dir = tiny_all_run / "retention"
    rows = _rows(run_dir)
    machine = _machine(run_dir)
    golden, mine = _golden("retention_quick", machine, {"rows": rows})
    assert len(rows) == len(golden["rows"])
    if mine:
        assert rows == golden["rows"]
        return
    first, expected = rows[0], golden["rows"][0]
    assert (first["phase"], first["update"]) == (expected["phase"], 0) == ("socialization", 0)
    for key, value in expected.items():
        wanted = value if isinstance(value, str) else pytest.approx(value, rel=1e-4, abs=1e-7)
        assert first[key] == wanted, key
    exact = rows == golden["rows"]
    warnings.warn(
        f"golden numbers were written on {golden['machine']}; on {machine} the deterministic "
        f"mode {'repeated them bit for bit' if exact else 'gave other digits'}",
        stacklevel=1,
    )


NOT_NUMBERS = ("timings", "versions", "config")
"""Parts of results.json that are not the experiment's numbers (durations, the machine and the
settings, which a redesign may lay out otherwise)."""


def _numbers(run_dir: Path) -> dict:
    """Per experiment of an `all` run: its results.json less `NOT_NUMBERS`, and every row of
    its metrics.csv."""
    found = {}
    for results in sorted(run_dir.glob("*/results.json")):
        data = json.loads(results.read_text())
        numbers = {key: value for key, value in data.items() if key not in NOT_NUMBERS}
        with open(results.parent / "metrics.csv") as table:
            numbers["metrics.csv"] = [row for row in csv.reader(table)]
        found[results.parent.name] = numbers
    return found


def _differences(expected, actual, path: str = "") -> list[str]:
    """Where `actual` differs from `expected` (JSON values), as `path: expected != actual`."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        found = [f"{path}/{key}: missing" for key in expected if key not in actual]
        found += [f"{path}/{key}: not expected" for key in actual if key not in expected]
        for key in expected.keys() & actual.keys():
            found += _differences(expected[key], actual[key], f"{path}/{key}")
        return found
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [
            difference
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for difference in _differences(e, a, f"{path}[{i}]")
        ]
    return [] if expected == actual else [f"{path}: {expected!r} != {actual!r}"]


def test_a_moved_number_is_found():
    golden = {"a": {"b": [1.0, 2.0], "c": "x"}, "metrics.csv": [["1", "0.5"]]}
    assert _differences(golden, json.loads(json.dumps(golden))) == []
    moved = json.loads(json.dumps(golden))
    moved["a"]["b"][1] = 2.0000000000000004  # the last bit of a double
    moved["metrics.csv"][0][1] = "0.50000001"
    assert sorted(_differences(golden, moved)) == [
        "/a/b[1]: 2.0 != 2.0000000000000004",
        "/metrics.csv[0][1]: '0.5' != '0.50000001'",
    ]
    del moved["a"]["c"]
    assert "/a/c: missing" in _differences(golden, moved)


def test_golden_numbers_of_every_experiment(tiny_all_run):
    """Every experiment of the tiny `all` run: its results.json numbers and metrics.csv, bit for
    bit on the machine and versions that wrote a golden file. Elsewhere the numbers drift after
    the first updates (see `test_golden_numbers`), so only the layout is compared."""
    found = _numbers(tiny_all_run)
    machine = _machine(tiny_all_run / "retention")
    golden, mine = _golden("all_quick", machine, {"experiments": found})
    expected = golden["experiments"]
    if mine:
        differences = _differences(expected, found)
        assert not differences, f"{len(differences)} numbers differ: {differences[:20]}"
        return
    assert sorted(found) == sorted(expected)
    for name, numbers in expected.items():
        assert sorted(found[name]) == sorted(numbers), name
    warnings.warn(
        f"golden numbers of every experiment were written on {golden['machine']}, not on "
        f"{machine}: only their layout was compared",
        stacklevel=1,
    )


CLAIM = """
import sys, time
from internalize import numerics
print(numerics.claim_cpu(sys.argv[1]), flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_processes_side_by_side_claim_cpus_of_their_own(tmp_path):
    """Deterministic Ray workers pin themselves to CPUs that no other has claimed; a claim ends
    with its process."""
    allowed = sorted(os.sched_getaffinity(0))

    def claim(hold: float) -> subprocess.Popen:
        command = [sys.executable, "-c", CLAIM, str(tmp_path), str(hold)]
        return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)

    holder = claim(30)
    first = int(holder.stdout.readline())
    second = int(claim(0).communicate()[0])
    holder.kill()
    holder.wait()
    assert first == allowed[0]
    # With one CPU only, the second shares it.
    assert second == (allowed[1] if len(allowed) > 1 else allowed[0])
    assert int(claim(0).communicate()[0]) == allowed[0]  # the holder's claim ended with it
