"""One self-contained HTML report of a run directory: `internalize report RUN_DIR`.

A run directory is one experiment (its `config.json` names the experiment) or an `all` run whose
subdirectories `retention`, `ood`, ... are each one experiment. The report shows a headline table
(ours beside the published numbers), then per experiment every figure, every summary (n, mean, SE,
95% CI), every test, the other scalar results, the config, versions and timings. It needs no
network: figures are embedded as base64 `data:` URIs and the style sheet is inline.
"""

import base64
import html
import json
import math
import reprlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from internalize.experiments.common import RESULTS_FILE, atomic_write, read_json_object
from internalize.experiments.registry import REGISTRY, Pick

CONFIG_FILE, VERSIONS_FILE, REPORT_FILE = "config.json", "versions.json", "report.html"
ALL_EXPERIMENTS = tuple(
    sorted(
        (name for name, record in REGISTRY.items() if record.in_all),
        key=lambda name: REGISTRY[name].title.split(".")[0],
    )
)
"""In the order of the paper (A to E; the registry's order within a letter)."""
IMAGE_TYPES = {".png": "image/png", ".gif": "image/gif"}
IMAGE_SUBFOLDERS = ("render", "gifs")

QUICK_BANNER = (
    "quick: not findings. A smoke run of the whole pipeline (--quick: few seeds, a few rollouts "
    "per phase); its numbers say nothing of the paper's findings."
)

TITLES = {name: record.title for name, record in REGISTRY.items()}


def _report_rows(name: str) -> tuple:
    """The registry's headline rows of experiment `name` (none for an unknown one)."""
    return REGISTRY[name].report_rows if name in REGISTRY else ()


def _fallback_published(name: str) -> dict:
    """The registry's published numbers of `name`, for a results.json without them."""
    return REGISTRY[name].published if name in REGISTRY else {}


_ONE_SIDED = {"greater": "(one-sided, >)", "less": "(one-sided, <)"}
"""How a test's one-sided alternative is shown (two-sided, the usual, is not named)."""
NOT_RESULTS = {"experiment", "preset", "config", "versions", "timings", "published"}
"""Top-level keys of results.json that are not results (shown elsewhere or not at all)."""
STRUCTURAL = {"summary", "tests", "per_task", "conditions"}
"""Keys left out of a quantity's name: they say where it is, not what it is."""

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2430;
  max-width: 1240px; margin: 0 auto; padding: 1.5rem 2rem 4rem; background: #fff; }
h1 { font-size: 1.7rem; margin-bottom: .2rem; }
h2 { margin-top: 2.6rem; padding-top: .6rem; border-top: 2px solid #d8dee8; }
h3 { margin: 1.4rem 0 .4rem; font-size: 1.05rem; color: #384253; }
nav a { margin-right: 1rem; } a { color: #1f5fbf; text-decoration: none; }
.muted, .table p, figcaption { color: #5b6577; font-size: .88rem; }
.table { overflow-x: auto; margin: .4rem 0 1rem; } .table p { margin: 0 0 .3rem; }
table { border-collapse: collapse; font-size: .9rem; }
th, td { padding: .28rem .55rem; border-bottom: 1px solid #e3e7ee; text-align: left;
  vertical-align: top; white-space: nowrap; }
th { background: #f3f5f9; font-weight: 600; border-bottom: 2px solid #cfd6e2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafbfd; }
.badge { display: inline-block; padding: .05rem .5rem; border-radius: .7rem; font-size: .8rem;
  font-weight: 600; } .finished { background: #dff3e4; color: #17663a; }
.unfinished { background: #fdf0d5; color: #8a5a00; }
.quick { background: #fdf0d5; color: #8a5a00; padding: .5rem .8rem; font-weight: 600; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; max-width: 100%; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e7ee; }
details { margin: .4rem 0; } summary { cursor: pointer; color: #1f5fbf; }
pre { background: #f6f8fa; padding: .8rem; overflow-x: auto; font-size: .82rem; }
"""


# ---------------------------------------------------------------------------- reading


def _load_json(path: Path) -> dict | None:
    """The JSON object in `path`, or None when there is no such file."""
    return read_json_object(path) if path.is_file() else None


OBJECTS = ("published", "timings", "summary", "tests", "status", "config", "versions")
"""Keys of a results.json that the report reads as JSON objects, where present."""
NUMBERS = tuple(
    "mean se sem sd ci_low ci_high confidence statistic df p_value difference effect_size".split()
)
"""Fields of a summary or test that the report formats as numbers (or null)."""


def _check_results(path: Path, results: dict) -> None:
    """Raise ValueError, naming the file, the key and the value, where `results` (read from
    `path`) has a shape the report cannot show."""

    def wrong(key: str, expected: str, value: Any) -> ValueError:
        return ValueError(f"{path}: {key!r} must be {expected}, got {reprlib.repr(value)}")

    for key in OBJECTS:
        if not isinstance(results.get(key, {}), dict):
            raise wrong(key, "a JSON object", results[key])
    seeds = results.get("seeds", [])
    if not isinstance(seeds, list) or not all(_is_integer(seed) for seed in seeds):
        raise wrong("seeds", "a list of integer seeds", seeds)
    for where, value in _leaves(results):
        if _is_summary(value) or _is_test(value):
            for field in NUMBERS:
                if value.get(field) is not None and not _is_number(value[field]):
                    raise wrong("/".join((*where, field)), "a number", value[field])


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _experiment(name: str, directory: Path) -> dict[str, Any]:
    """What the report shows of one experiment directory (absent files give None)."""
    files = {"config": CONFIG_FILE, "results": RESULTS_FILE, "versions": VERSIONS_FILE}
    loaded = {key: _load_json(directory / file) for key, file in files.items()}
    if loaded["results"] is not None:
        _check_results(directory / RESULTS_FILE, loaded["results"])
    return {"name": name, "dir": directory, **loaded}


def _read_run(run_dir: Path) -> tuple[dict | None, list[dict]]:
    """The `all` part of a run (its own config and results, or None) and its experiments."""
    if not run_dir.is_dir():
        raise ValueError(f"{run_dir} is not a directory")
    config = _load_json(run_dir / CONFIG_FILE)
    if config is not None and config.get("experiment") != "all":
        return None, [_experiment(str(config.get("experiment") or run_dir.name), run_dir)]
    if config is None and not any((run_dir / n / CONFIG_FILE).is_file() for n in ALL_EXPERIMENTS):
        raise ValueError(
            f"{run_dir} is not a run directory: no {CONFIG_FILE} in it nor in any of its "
            f"experiment subdirectories ({', '.join(ALL_EXPERIMENTS)})"
        )
    listed = set((config or {}).get("experiments") or ALL_EXPERIMENTS)  # paper, --only
    names = [name for name in ALL_EXPERIMENTS if name in listed]
    return _experiment("all", run_dir), [_experiment(n, run_dir / n) for n in names]


def _pick(data: Any, where: Pick) -> Any:
    """The value `where` points to in `data` (see `Pick`); None where it is absent."""
    if where is None or isinstance(where, str):
        return where
    if callable(where):
        try:
            return where(data)
        except (KeyError, TypeError, ValueError, IndexError):
            return None
    for key in where:
        if not isinstance(data, Mapping) or key not in data:
            return None
        data = data[key]
    return data


def _leaves(tree: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """(path, value) of every summary, test and scalar in `tree`; lists (per-seed data) are
    skipped. A summary is a dict with a mean and a standard error, a test one with a p-value."""
    if isinstance(tree, Mapping) and not _is_summary(tree) and not _is_test(tree):
        for key, value in tree.items():
            yield from _leaves(value, (*path, str(key)))
    elif not isinstance(tree, list):
        yield path, tree


def _is_summary(value: Any) -> bool:
    return isinstance(value, Mapping) and "mean" in value and ("se" in value or "sem" in value)


def _is_test(value: Any) -> bool:
    return isinstance(value, Mapping) and "p_value" in value and "statistic" in value


# ---------------------------------------------------------------------------- formatting


class _Formatted(str):
    """A number already formatted as text: a table shows it as it is, right-aligned."""


def _number(value: Any, p_value: bool = False) -> str:
    """3 significant digits (2 for a p-value: 1.2e-05); thousands separated; '—' for None."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if p_value:
            return f"{value:.2g}"
        return f"{value:,.0f}" if 1e3 <= abs(value) < 1e7 else f"{value:.3g}"
    return str(value)


def _shown(value: Any, p_value: bool = False) -> str:
    """`value` as a table shows it: a number formatted and right-aligned, other things as text."""
    numeric = value is None or _is_number(value)
    return _Formatted(_number(value, p_value)) if numeric else _number(value)


def _interval(low: Any, high: Any, confidence: Any = 0.95) -> str:
    """'[low, high]' with an open end (None in a one-sided interval) as ∓∞."""
    if low is None and high is None:
        return _Formatted("—")
    text = f"[{'−∞' if low is None else _number(low)}, {'∞' if high is None else _number(high)}]"
    return _Formatted(text if confidence in (None, 0.95) else f"{text} ({confidence:.0%})")


def _name(path: tuple) -> str:
    return " / ".join(part for part in path if part not in STRUCTURAL) or "/".join(path)


def _table(headers: list[str], rows: list[list[Any]], caption: str = "") -> str:
    """An HTML table; a cell is text (escaped), or a number (formatted, right-aligned)."""
    if not rows:
        return ""

    def cell(value: Any) -> str:
        value = value if isinstance(value, str) else _shown(value)
        css = ' class="num"' if isinstance(value, _Formatted) else ""
        return f"<td{css}>{html.escape(value)}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    caption = f"<p>{html.escape(caption)}</p>" if caption else ""
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="table">{caption}{table}</div>'


def _key_values(tree: Any, caption: str = "") -> str:
    """A two-column table of every scalar in a nested dict (nested keys joined by '/')."""
    rows = [["/".join(path), value] for path, value in _leaves(tree or {})]
    return _table(["key", "value"], rows, caption)


# ---------------------------------------------------------------------------- sections


def _headline_rows(experiment: dict) -> list[list[Any]]:
    """[label, ours, published] rows of one finished experiment (ours and published right-aligned,
    numbers or not, so that they line up)."""
    results = experiment["results"]
    published = results.get("published") or _fallback_published(experiment["name"])
    rows = []
    for label, ours, theirs in _report_rows(experiment["name"]):
        p_value = isinstance(ours, tuple) and ours[-1] == "p_value"
        rows.append(
            [
                label,
                *(
                    _Formatted(_number(_pick(data, where), p_value))
                    for data, where in ((results, ours), (published, theirs))
                ),
            ]
        )
    return rows


def _status(experiment: dict) -> str:
    if experiment["results"] is not None:
        return '<span class="badge finished">finished</span>'
    return '<span class="badge unfinished">not finished</span>'


def _headline(experiments: list[dict]) -> str:
    rows = []
    for experiment in experiments:
        name, results = experiment["name"], experiment["results"]
        if results is None:
            rows.append([name, "not finished", None, None, None, None])
            continue
        seeds, wall = len(results.get("seeds", ())) or None, _pick(results, ("timings", "total_s"))
        for i, row in enumerate(_headline_rows(experiment) or [["finished", None, None]]):
            rows.append([name if i == 0 else "", *row, *((seeds, wall) if i == 0 else ("", ""))])
    headers = ["experiment", "finding", "ours", "published", "seeds", "wall time (s)"]
    return _table(headers, rows, "Headline numbers: ours beside the published ones (SPEC §5)")


def _images(directory: Path) -> str:
    """Every figure of a directory (and its render/ and gifs/ folders) as embedded images."""
    folders = [directory, *(directory / sub for sub in IMAGE_SUBFOLDERS)]
    files = sorted(
        path
        for folder in folders
        if folder.is_dir()
        for path in folder.iterdir()
        if path.suffix.lower() in IMAGE_TYPES and path.is_file()
    )
    figures = []
    for path in files:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        name = html.escape(str(path.relative_to(directory)))
        src = f"data:{IMAGE_TYPES[path.suffix.lower()]};base64,{data}"
        figures.append(
            f'<figure><img src="{src}" alt="{name}"><figcaption>{name}</figcaption></figure>'
        )
    return f'<div class="figures">{"".join(figures)}</div>' if figures else ""


def _results_tables(results: Mapping) -> str:
    """Summaries, tests and the other scalar results of one results.json, as three tables."""
    leaves = [(p, v) for p, v in _leaves(results) if p[0] not in NOT_RESULTS]
    summaries = [
        [
            _name(p),
            v.get("n"),
            v["mean"],
            v.get("se", v.get("sem")),
            _interval(v.get("ci_low"), v.get("ci_high"), v.get("confidence")),
            v.get("sd"),
        ]
        for p, v in leaves
        if _is_summary(v)
    ]
    tests = [
        [
            _name(p),
            f"{v.get('test')} {_ONE_SIDED.get(v.get('alternative'), '')}".rstrip(),
            v["statistic"],
            v.get("df"),
            _shown(v["p_value"], p_value=True),
            v.get("difference"),
            _interval(v.get("ci_low"), v.get("ci_high"), v.get("confidence")),
            v.get("effect_size"),
            v.get("effect_size_kind"),
            _Formatted(f"{v.get('n_a', '—')}/{v.get('n_b', '—')}"),
        ]
        for p, v in leaves
        if _is_test(v)
    ]
    others = [[_name(p), v] for p, v in leaves if not (_is_summary(v) or _is_test(v))]
    return "".join(
        (
            _table(
                ["quantity", "n", "mean", "SE", "95% CI", "SD"],
                summaries,
                "Per condition: mean over seeds, standard error, 95% confidence interval",
            ),
            _table(
                [
                    "comparison",
                    "test",
                    "statistic",
                    "df",
                    "p",
                    "difference",
                    "95% CI",
                    "effect size",
                    "kind",
                    "n",
                ],
                tests,
                "Tests (differences are the first condition minus the second)",
            ),
            _table(["quantity", "value"], others, "Other results"),
        )
    )


def _details(title: str, body: str) -> str:
    return f"<details><summary>{html.escape(title)}</summary>{body}</details>" if body else ""


def _json_block(data: Any) -> str:
    return f"<pre>{html.escape(json.dumps(data, indent=2))}</pre>" if data is not None else ""


def _provenance(part: dict) -> str:
    """Config (collapsed), versions and machine, and timings of one run or experiment."""
    results = part["results"] or {}
    versions = part["versions"] or results.get("versions")
    return "".join(
        (
            _details(f"config ({CONFIG_FILE})", _json_block(part["config"])),
            _details("versions and machine", _key_values(versions)),
            _key_values(results.get("timings"), "Timings (seconds, steps, steps per second)"),
        )
    )


def _section(experiment: dict) -> str:
    name, results = experiment["name"], experiment["results"]
    title = html.escape(TITLES.get(name, name))
    parts = [f'<h2 id="{html.escape(name)}">{title} {_status(experiment)}</h2>']
    parts.append(f'<p class="muted">{html.escape(str(experiment["dir"]))}</p>')
    if results is not None:
        published = results.get("published") or _fallback_published(name)
        notes = [published.get(key) for key in ("source", "finding", "note")]
        parts.append("<h3>Ours vs published</h3>")
        parts.append(_table(["finding", "ours", "published"], _headline_rows(experiment)))
        parts.extend(f'<p class="muted">{html.escape(n)}</p>' for n in notes if n)
    figures = _images(experiment["dir"]) if experiment["dir"].is_dir() else ""
    parts.append(f"<h3>Figures</h3>{figures}" if figures else "")
    if results is not None:
        parts.append(f"<h3>Results</h3>{_results_tables(results)}")
    parts.append(f"<h3>Provenance</h3>{_provenance(experiment)}")
    return "".join(parts)


def _page_head(run_dir: Path, title: str) -> list[str]:
    return [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        # Nothing may come from the network: the page is self-contained by construction.
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "img-src data:; style-src 'unsafe-inline'\">",
        "<link rel='icon' href='data:,'>",
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p class='muted'>{html.escape(str(run_dir.resolve()))}</p>",
    ]


def _sweep_report(run_dir: Path, config: dict) -> str:
    """The report of a sweep directory: its grid, each cell's status and headline numbers
    (mean and 95% interval over seeds), and its figures."""
    summary = _load_json(run_dir / "sweep.json")
    title = f"internalize sweep report: {run_dir.resolve().name}"
    grid = config.get("grid", {})
    parts = _page_head(run_dir, title)
    parts.append(
        f"<p>{html.escape(str(config.get('swept')))} over "
        + html.escape(
            " × ".join(f"{key} ∈ {{{', '.join(values)}}}" for key, values in grid.items())
        )
        + "</p>"
    )
    if summary is None:
        finished = sum(
            (run_dir / "cells" / c["name"] / RESULTS_FILE).is_file()
            for c in config.get("cells", [])
        )
        parts.append(
            f"<p>Not finished: {finished} of {len(config.get('cells', []))} cells "
            "have results; run the same command again to resume.</p>"
        )
        return "\n".join([*parts, "</body></html>"])
    headline = summary.get("headline", [])
    rows = [
        [
            cell["name"],
            *cell["settings"].values(),
            *(
                _Formatted(f"{_number(m['mean'])} {_interval(m['ci_low'], m['ci_high'])}")
                for m in (cell["metrics"].get(name, {}) for name in headline)
                if m
            ),
        ]
        for cell in summary.get("cells", [])
    ]
    parts.append(
        _table(
            ["cell", *grid, *headline],
            rows,
            "Headline metrics per cell: mean and 95% bootstrap interval over seeds",
        )
    )
    parts.append(
        f"<p class='muted'>Every metric: {html.escape(summary.get('table', ''))}; "
        f"cells in {html.escape(str(run_dir / 'cells'))}.</p>"
    )
    parts.append(_images(run_dir))
    return "\n".join([*parts, "</body></html>"])


def render_report(run_dir: str | Path) -> str:
    """The report of `run_dir` as one HTML page (raises ValueError for a directory that is not
    a run); a teaching session's is its replay's (`teach.replay_directory`)."""
    from internalize.teach import replay_directory

    run_dir = replay_directory(run_dir)
    config = _load_json(run_dir / CONFIG_FILE) if run_dir.is_dir() else None
    if config is not None and config.get("experiment") == "sweep":
        return _sweep_report(run_dir, config)
    whole, experiments = _read_run(run_dir)
    title = f"internalize report: {run_dir.resolve().name}"
    shows_whole = whole is not None and (whole["config"] or whole["results"])
    names = ["all"] * bool(shows_whole) + [html.escape(e["name"]) for e in experiments]
    nav = " ".join(f'<a href="#{name}">{name}</a>' for name in names)
    parts = [*_page_head(run_dir, title), f"<nav>{nav}</nav>"]
    if shows_whole and (whole["config"] or {}).get("quick"):
        parts.append(f"<p class='quick'>{QUICK_BANNER}</p>")
    parts.append(_headline(experiments))
    if shows_whole:
        figures = _images(run_dir)
        parts.append(f"<h2 id='all'>Whole run {_status(whole)}</h2>{figures}")
        results = whole["results"] or {}
        shown = {k: v for k, v in results.items() if k not in ("experiment", "config", "versions")}
        parts.append(_key_values(shown, "Timings and memory of the whole run"))
        parts.append(_provenance({**whole, "results": None}))
    parts.extend(_section(experiment) for experiment in experiments)
    parts.append("</body></html>")
    return "\n".join(part for part in parts if part)


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of `run_dir` to `out` (default RUN_DIR/report.html), atomically."""
    out = Path(out) if out is not None else Path(run_dir) / REPORT_FILE
    page = render_report(run_dir)
    if not out.parent.is_dir():
        raise ValueError(f"cannot write {out}: {out.parent} is not a directory")
    atomic_write(out, page.encode("utf-8"))
    return out
