"""Numbers that repeat: what makes a run's digits depend on the machine, and the mode that fixes it.

Measured on jax 0.10.2 (`benchmarks/RESULTS.md`, "Numbers and CPUs"): on one machine a run repeats
bit for bit, but XLA's CPU backend gives other digits

- with another count of CPUs the process may use. XLA's CPU client sizes its thread pool by the
  CPUs the process may run on, and the convolution gradients and fused reductions of the ISR's
  training are split across that pool, so their sums are added in another order. The PPO
  phases of that measurement (retention, MLP policy) were not affected.
  `--xla_cpu_multi_thread_eigen=false` and `--xla_cpu_use_xnnpack=false` change nothing here;
- with another instruction set: XLA compiles its kernels for the host CPU, and AVX2 (with FMA),
  AVX and SSE4.2 (`--xla_cpu_max_isa`) each gave other digits from the first update on.

The deterministic mode removes both causes that are in our hands: the process runs on one CPU
(so XLA's pool has one thread, whatever the machine has), and on x86-64 XLA's generated kernels
are capped at AVX2, an instruction set every x86-64 server of the last decade has, so that a CPU
with AVX-512 compiles the kernels an AVX2 CPU does. It must be set before JAX starts its CPU
backend. What it cannot settle: libraries inside jaxlib that choose kernels by the CPU at run
time, and other versions of jax/jaxlib. A GPU's or TPU's numerics are its own: where JAX will run
on one (`accelerator`), the mode changes nothing, neither the CPUs the process may use nor the
flags.
"""

import glob
import os
import platform
import re
import sys
from importlib import metadata

from internalize import compile_cache

ISA_CAP = "--xla_cpu_max_isa=AVX2"
"""XLA flag that caps the instruction set of XLA's generated CPU kernels (x86-64 only)."""


def _x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def _backend_started() -> bool:
    """Whether JAX has created a backend already (then flags and affinity come too late)."""
    bridge = sys.modules.get("jax._src.xla_bridge")
    return bool(bridge is not None and getattr(bridge, "_backends", None))


def deterministic_flags(xla_flags: str) -> str:
    """`xla_flags` (an XLA_FLAGS value) with the instruction-set cap added on x86-64, unless the
    user chose a `--xla_cpu_max_isa` of their own."""
    if not _x86() or "--xla_cpu_max_isa" in xla_flags:
        return xla_flags
    return f"{xla_flags} {ISA_CAP}".strip()


ACCELERATORS = {
    "gpu": (r"jax-cuda\d+-pjrt|jax-rocm\d+-pjrt", ("/dev/nvidia[0-9]*", "/dev/kfd")),
    "tpu": (r"libtpu(-nightly)?", ("/dev/accel[0-9]*", "/dev/vfio/[0-9]*")),
}
"""Per kind of accelerator: the PyPI distributions of JAX's plugins for it (a pattern) and the
device files its driver makes."""


def accelerator() -> str | None:
    """The accelerator JAX will run on by default, found without starting JAX (flags and CPU
    pinning must come before that): `gpu`, `tpu`, or None for the CPU. `JAX_PLATFORMS`, where
    set, decides by its first platform; otherwise an accelerator counts where JAX's plugin for
    it is installed and its device files exist."""
    chosen = os.environ.get("JAX_PLATFORMS", "").split(",")[0].strip().lower()
    if chosen:
        return {"cuda": "gpu", "rocm": "gpu", "gpu": "gpu", "tpu": "tpu"}.get(chosen)
    installed = {(dist.metadata["Name"] or "").lower() for dist in metadata.distributions()}
    for kind, (plugins, devices) in ACCELERATORS.items():
        pattern = re.compile(plugins)
        if any(map(pattern.fullmatch, installed)) and any(map(glob.glob, devices)):
            return kind
    return None


DEVICES = {"cpu": "cpu", "gpu": "cuda"}
"""`--device` choices and the JAX platform each names (`JAX_PLATFORMS`)."""


def choose_device(device: str | None) -> None:
    """Run JAX in this process and those it starts on `device` (a key of `DEVICES`; None:
    JAX's own choice, or `JAX_PLATFORMS` where set), by setting `JAX_PLATFORMS`, before JAX
    starts its backend. A run records the device it ran on (versions.json: `jax_backend`,
    `devices`). ValueError for `gpu` where JAX's CUDA plugin is not installed."""
    if device is None:
        return
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; known: {list(DEVICES)}")
    if _backend_started():
        raise RuntimeError("the device must be chosen before JAX starts its backend")
    if device == "gpu":
        installed = {(dist.metadata["Name"] or "").lower() for dist in metadata.distributions()}
        if not any(re.fullmatch(r"jax-cuda\d+-pjrt", name) for name in installed):
            raise ValueError(
                "--device gpu: JAX's CUDA plugin is not installed (pip install 'internalize[cuda]')"
            )
    os.environ["JAX_PLATFORMS"] = DEVICES[device]


def make_deterministic(cpu: int | None = None) -> dict[str, str]:
    """Put this process in the deterministic mode: on one CPU (`cpu`, default the first it may
    use) and with XLA's CPU kernels capped at AVX2. Call it before anything runs in JAX; child
    processes inherit both. Where JAX will run on an accelerator (`accelerator`), it changes
    nothing. Returns what `describe` returns.

    Raises RuntimeError if JAX's backend has started already.
    """
    if _backend_started():
        raise RuntimeError("the deterministic mode must be set before JAX starts its backend")
    if accelerator() is not None:
        return describe()
    os.environ["XLA_FLAGS"] = deterministic_flags(os.environ.get("XLA_FLAGS", ""))
    if hasattr(os, "sched_setaffinity"):
        allowed = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {allowed[0] if cpu is None else cpu})
    if os.environ.get(compile_cache.VARIABLE, "off") != "off":  # programs for one CPU
        compile_cache.configure(os.environ[compile_cache.VARIABLE])
    return describe()


_claimed: list[int] = []
"""File descriptors of the CPU claims this process holds (`claim_cpu`), open for its life."""


def claim_cpu(folder: str | None = None) -> int | None:
    """A CPU this process may use that no other process on this machine has claimed, claimed
    for the life of this process (an exclusive `flock` on `internalize-cpu-N.lock` in `folder`,
    default the temporary directory), so that deterministic workers started side by side by
    someone else (Ray) each run on a CPU of their own. When every CPU is claimed: the first (a
    shared CPU is slower, not less exact). None where the platform cannot pin processes."""
    import fcntl
    import tempfile

    if not hasattr(os, "sched_getaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    folder = folder or tempfile.gettempdir()
    for cpu in allowed:
        handle = os.open(
            os.path.join(folder, f"internalize-cpu-{cpu}.lock"), os.O_RDWR | os.O_CREAT, 0o666
        )
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            continue
        _claimed.append(handle)
        return cpu
    return allowed[0]


CPU_ID_FIELDS = ("vendor_id", "cpu family", "model", "CPU implementer", "CPU part")
"""/proc/cpuinfo fields that name a CPU's generation (x86: vendor, family, model; Arm:
implementer, part). A virtual machine often shows only "AMD EPYC" as the model name, and two
generations behind that name gave other digits with the same flags and versions (README)."""


def describe() -> dict[str, str]:
    """The numerics of this process: CPUs it may use, XLA_FLAGS, CPU model, generation and the
    instruction sets that matter (what a run's `versions.json` records)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    found = {"cpus_used": str(cpus), "xla_flags": os.environ.get("XLA_FLAGS", "")}
    first: dict[str, str] = {}  # the first processor's fields
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                first.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    found["cpu_model"] = first.get("model name") or platform.processor() or platform.machine()
    found["cpu_id"] = (
        " ".join(f"{name}={first[name]}" for name in CPU_ID_FIELDS if first.get(name))
        or platform.platform()
    )
    if "flags" in first:
        flags = set(first["flags"].split())
        found["cpu_isa"] = " ".join(
            name for name in ("sse4_2", "avx", "avx2", "fma", "avx512f") if name in flags
        )
    return found
