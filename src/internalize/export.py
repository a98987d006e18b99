"""`internalize export`: a run's curves in the tools researchers use, on request.

    internalize export RUN_DIR --tensorboard DIR     # event files; tensorboard --logdir DIR
    internalize export RUN_DIR --wandb DIR           # W&B offline runs; wandb sync DIR/wandb/...

RUN_DIR is a run of one experiment, an `all` run or a sweep; every `metrics.csv` in it is read.
Each curve of a metrics.csv (one seed, phase, condition and task) becomes one TensorBoard run
(`EXPERIMENT/seed1234/autonomy/isr`) or one W&B run in offline mode (grouped by experiment,
with the run's config.json as its config), its metrics against environment steps (`step`, or
`update`, or for scaling `samples`). TensorBoard's event files are written here with no
TensorFlow or TensorBoard installed; W&B needs the `wandb` package, and works without network.
"""

import csv
import os
import struct
import time
from pathlib import Path

from internalize.experiments.common import atomic_write, read_json_object

CURVE_COLUMNS = ("seed", "phase", "condition", "task")
"""Columns that name a curve."""
STEP_COLUMNS = ("step", "update", "samples")
"""The first of these that a metrics.csv has is the curve's x axis."""


def run_directories(path: str | os.PathLike) -> list[tuple[str, Path]]:
    """`(name, directory)` of every run in `path` with a metrics.csv: the run itself, an `all`
    run's experiments or a sweep's cells; ValueError if there is none."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path} is not a directory")
    found = [
        (
            str(metrics.parent.relative_to(path)) if metrics.parent != path else path.name,
            metrics.parent,
        )
        for metrics in sorted(path.glob("metrics.csv"))
        + sorted(path.glob("*/metrics.csv"))
        + sorted(path.glob("cells/*/metrics.csv"))
    ]
    if not found:
        raise ValueError(f"{path} holds no metrics.csv: not a finished run, `all` run or sweep")
    return found


def curves(metrics: Path) -> dict[str, list[tuple[int, dict[str, float]]]]:
    """The curves of a metrics.csv: name (`seed1234/autonomy/isr`) -> [(x, {metric: value})]."""
    with open(metrics, newline="") as file:
        reader = csv.DictReader(file)
        columns = reader.fieldnames or []
        x = next((column for column in STEP_COLUMNS if column in columns), None)
        if x is None:
            raise ValueError(f"{metrics} has none of the columns {list(STEP_COLUMNS)}")
        named = [column for column in CURVE_COLUMNS if column in columns]
        values = [c for c in columns if c not in named and c not in STEP_COLUMNS]
        found: dict[str, list] = {}
        for row in reader:
            name = "/".join(f"seed{row[c]}" if c == "seed" else row[c] for c in named if row[c])
            point = {column: float(row[column]) for column in values if row[column] != ""}
            found.setdefault(name or "run", []).append((int(float(row[x])), point))
    return found


def to_tensorboard(run_dir: str | os.PathLike, out: str | os.PathLike) -> list[Path]:
    """Write one TensorBoard event file per curve of every run in `run_dir` under `out`
    (`out/RUN/CURVE/events.out.tfevents...`); returns the files written."""
    written = []
    for name, directory in run_directories(run_dir):
        for curve, points in curves(directory / "metrics.csv").items():
            folder = Path(out) / name / curve
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"events.out.tfevents.{int(time.time())}.internalize"
            records = [_event(time.time(), 0, file_version="brain.Event:2")]
            records += [_event(time.time(), step, scalars=point) for step, point in points if point]
            atomic_write(path, b"".join(_record(record) for record in records))
            written.append(path)
    return written


def to_wandb(run_dir: str | os.PathLike, out: str | os.PathLike, project: str = "internalize"):
    """Log every curve of every run in `run_dir` as a W&B run in offline mode under `out`
    (`wandb sync` uploads them later); returns the runs' local folders."""
    try:
        import wandb
    except ImportError:
        raise ValueError("--wandb needs W&B: pip install wandb") from None
    folders = []
    for name, directory in run_directories(run_dir):
        config_path = directory / "config.json"
        config = read_json_object(config_path) if config_path.is_file() else {}
        for curve, points in curves(directory / "metrics.csv").items():
            run = wandb.init(
                project=project,
                name=f"{name}/{curve}",
                group=name,
                config=config,
                dir=str(out),
                mode="offline",
                reinit="create_new",
            )
            for step, point in points:
                run.log(point, step=step)
            folders.append(Path(run.dir).parent)
            run.finish()
    # W&B writes a run's file from a service process of its own: shutting it down waits until
    # every run is on disk (on one CPU, a file read just after `finish` was seen empty).
    wandb.teardown()
    return folders


# TensorBoard's event files: TFRecords of `Event` protocol buffers, written by hand. An event is
# wall_time (field 1, double), step (2, int64), file_version (3, string) or summary (5), whose
# values (1) have a tag (1, string) and a simple_value (2, float).


def _event(wall_time: float, step: int, file_version: str = "", scalars=None) -> bytes:
    message = _field(1, 1, struct.pack("<d", wall_time)) + _field(2, 0, _varint(step))
    if file_version:
        message += _bytes(3, file_version.encode())
    if scalars:
        values = b"".join(
            _bytes(1, _bytes(1, tag.encode()) + _field(2, 5, struct.pack("<f", value)))
            for tag, value in scalars.items()
        )
        message += _bytes(5, values)
    return message


def _field(number: int, wire: int, payload: bytes) -> bytes:
    return _varint(number << 3 | wire) + payload


def _bytes(number: int, payload: bytes) -> bytes:
    return _field(number, 2, _varint(len(payload)) + payload)


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64s as two's complement, as protobuf does
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _record(data: bytes) -> bytes:
    """One TFRecord: length, its masked CRC-32C, the data, its masked CRC-32C."""
    length = struct.pack("<Q", len(data))
    return (
        length
        + struct.pack("<I", _masked_crc(length))
        + data
        + struct.pack("<I", _masked_crc(data))
    )


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table.append(crc)
    return table


_CRC32C = _crc_table()


def _masked_crc(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
