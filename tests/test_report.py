"""The HTML report of a run directory: structure, embedded figures, numbers, errors, CLI."""

import base64
import json
import re
import shutil
from pathlib import Path

import pytest

from internalize.cli import main
from internalize.report import ALL_EXPERIMENTS, QUICK_BANNER, _number, write_report


def _images(directory: Path) -> list[Path]:
    folders = (directory, directory / "render", directory / "gifs")
    return sorted(
        p for f in folders if f.is_dir() for p in f.iterdir() if p.suffix in (".png", ".gif")
    )


def _results(run: Path, name: str) -> dict:
    return json.loads((run / name / "results.json").read_text())


def _linked_run(all_run: Path, tmp_path: Path, skip: tuple[str, ...] = ()) -> Path:
    """An `all` run in tmp_path whose experiments link to all_run's, less those in `skip`."""
    run = tmp_path / "run"
    run.mkdir()
    for name in ALL_EXPERIMENTS:
        if name not in skip:
            (run / name).symlink_to(all_run / name, target_is_directory=True)
    return run


@pytest.fixture(scope="module")
def page(all_run, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert write_report(all_run, out) == out
    return out.read_text()


def test_numbers_are_formatted_to_three_significant_digits():
    assert _number(3.22802734375) == "3.23"
    assert _number(0.000012345) == "1.23e-05"
    assert _number(0.000012345, p_value=True) == "1.2e-05"
    assert _number(0.35238, p_value=True) == "0.35"
    assert _number(1208320) == "1,208,320"
    assert _number(1113.87) == "1,114"
    assert _number(None) == "—"
    assert _number(True) == "yes"


def test_report_has_a_headline_and_a_section_per_experiment(page):
    assert page.startswith("<!doctype html>")
    assert page.rstrip().endswith("</html>")
    headline = page.index("Headline numbers")
    for name in ALL_EXPERIMENTS:
        section = page.index(f'<h2 id="{name}">')
        assert headline < section
    assert page.count("<details>") >= 2 * len(ALL_EXPERIMENTS)  # config and versions each
    assert "not finished" not in page


def test_a_quick_run_says_so_at_the_top(page, all_run, tmp_path):
    """A `--quick` run's report (the tiny run's) is marked so above every number; another's
    is not."""
    config = json.loads((all_run / "config.json").read_text())
    assert (QUICK_BANNER in page[: page.index("Headline numbers")]) == config["quick"]
    run = _linked_run(all_run, tmp_path)
    (run / "config.json").write_text(json.dumps({**config, "quick": not config["quick"]}))
    assert (QUICK_BANNER in write_report(run).read_text()) != config["quick"]


def test_a_run_of_some_experiments_reports_those(all_run, tmp_path):
    run = _linked_run(all_run, tmp_path)
    config = json.loads((all_run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "experiments": ["ood", "scaling"]}))
    page = write_report(run).read_text()
    assert '<h2 id="ood">' in page and '<h2 id="scaling">' in page
    assert '<h2 id="retention">' not in page


def test_every_figure_is_embedded(page, all_run):
    files = [path for name in ALL_EXPERIMENTS for path in _images(all_run / name)]
    assert files, "the run should have figures"
    for path in files:
        mime = "image/gif" if path.suffix == ".gif" else "image/png"
        data = base64.b64encode(path.read_bytes()).decode()
        assert f'src="data:{mime};base64,{data}"' in page, path
    assert page.count("<img ") == len(files)


def test_report_needs_no_network(page):
    assert not re.search(r"https?://", page)
    assert all(src.startswith("data:") for src in re.findall(r'src="([^"]*)"', page))
    links = re.findall(r"href=['\"]([^'\"]*)['\"]", page)
    assert all(link.startswith(("#", "data:")) for link in links)


def _leaves(tree, kind):
    if isinstance(tree, dict):
        if kind(tree):
            yield tree
        else:
            for key, value in tree.items():
                if key not in ("config", "versions", "published", "timings"):
                    yield from _leaves(value, kind)


def test_tables_hold_the_numbers_of_results_json(page, all_run):
    for name in ALL_EXPERIMENTS:
        results = _results(all_run, name)
        summaries = list(_leaves(results, lambda d: "mean" in d and ("se" in d or "sem" in d)))
        tests = list(_leaves(results, lambda d: "p_value" in d and "statistic" in d))
        assert summaries, name
        for summary in summaries:
            assert f">{_number(summary['mean'])}<" in page, (name, summary)
            assert f">{_number(summary.get('se', summary.get('sem')))}<" in page, (name, summary)
            if summary.get("ci_low") is not None:
                interval = f">[{_number(summary['ci_low'])}, {_number(summary['ci_high'])}]<"
                assert interval in page, (name, summary)
        for test in tests:
            for key in ("statistic", "df", "difference", "effect_size"):
                assert f">{_number(test[key])}<" in page, (name, key, test)
            assert f">{_number(test['p_value'], p_value=True)}<" in page, (name, test)
        assert f">{_number(results['timings']['total_s'])}<" in page, name


def test_ours_stand_beside_the_published_numbers(page, all_run):
    ood = _results(all_run, "ood")
    for condition, published in ood["published"]["return"].items():
        assert f">{_number(published['mean'])}<" in page
        assert f">{_number(ood['summary'][condition]['return']['mean'])}<" in page
    p_value = ood["tests"]["isr vs frozen"]["p_value"]
    assert f'>{_number(p_value, p_value=True)}</td><td class="num">0.029<' in page
    retention = _results(all_run, "retention")["goals_ratio_to_oracle"]
    assert f'>{_number(retention["none/oracle"])}</td><td class="num">≈ 0<' in page  # SPEC §5 A
    assert "SPEC §5 A" in page and "SPEC §5 C" in page


def test_unfinished_and_missing_experiments_are_shown_as_not_finished(all_run, tmp_path):
    run = _linked_run(all_run, tmp_path, skip=("ood", "layouts"))
    (run / "ood").mkdir()
    shutil.copy(all_run / "ood" / "config.json", run / "ood")
    page = write_report(run).read_text()
    assert (run / "report.html").is_file()
    for name in ("ood", "layouts"):
        section = page[page.index(f'<h2 id="{name}">') :]
        assert "not finished" in section[: section.index("</h2>")]
    assert page.count(">not finished<") == 2 + 2  # headline rows and section badges
    assert '<h2 id="scaling">' in page


def test_whole_run_timings_and_memory_are_shown(all_run, tmp_path):
    run = _linked_run(all_run, tmp_path)
    (run / "config.json").write_text(json.dumps({"experiment": "all", "seeds": 2}))
    whole = {"experiment": "all", "timings": {"ood": 12.5, "total_s": 3456.0}, "peak_rss_gb": 7.25}
    (run / "results.json").write_text(json.dumps(whole))
    page = write_report(run).read_text()
    for text in ("timings/ood", ">12.5<", "timings/total_s", ">3,456<", "peak_rss_gb", ">7.25<"):
        assert text in page


def test_one_experiment_is_a_run_directory_too(all_run, tmp_path):
    run = tmp_path / "scaling"
    shutil.copytree(all_run / "scaling", run)
    page = write_report(run).read_text()
    assert '<h2 id="scaling">' in page and '<h2 id="ood">' not in page
    assert page.count("<img ") == len(_images(run))


def test_a_directory_that_is_not_a_run_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="not a directory"):
        write_report(tmp_path / "missing")
    with pytest.raises(ValueError, match="no config.json"):
        write_report(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a readable JSON file"):
        write_report(tmp_path)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="holds a JSON list, not an object"):
        write_report(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"experiment": "all"}))
    (tmp_path / "ood").mkdir()
    (tmp_path / "ood" / "config.json").write_text("[truncated")
    with pytest.raises(ValueError, match=r"ood/config.json is not a readable JSON file"):
        write_report(tmp_path)


def test_cli_writes_the_report_and_prints_its_path(all_run, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(all_run), "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out) == {"report": str(out)}
    assert out.read_text().startswith("<!doctype html>")


def test_cli_errors_exit_with_status_2(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("internalize: error: ")
    assert main(["report", str(tmp_path / "missing")]) == 2
    (tmp_path / "config.json").write_text(json.dumps({"experiment": "scaling"}))
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "no" / "r.html")]) == 2
    with pytest.raises(SystemExit) as raised:
        main(["report"])
    assert raised.value.code == 2


@pytest.mark.parametrize(
    ("results", "message"),
    [
        ({"published": "x"}, "'published' must be a JSON object, got 'x'"),
        ({"seeds": 10}, "'seeds' must be a list of integer seeds, got 10"),
        ({"seeds": "1234"}, "'seeds' must be a list of integer seeds, got '1234'"),
        ({"seeds": [1234, True]}, "'seeds' must be a list of integer seeds, got [1234, True]"),
        ({"timings": [1]}, "'timings' must be a JSON object, got [1]"),
        (
            {"summary": {"isr": {"goals": {"mean": "high", "se": 0.1}}}},
            "'summary/isr/goals/mean' must be a number, got 'high'",
        ),
        (
            {"tests": {"a vs b": {"statistic": 2.0, "p_value": "0.01"}}},
            "'tests/a vs b/p_value' must be a number, got '0.01'",
        ),
    ],
)
def test_a_results_file_of_the_wrong_shape_is_a_named_error(tmp_path, capsys, results, message):
    (tmp_path / "config.json").write_text(json.dumps({"experiment": "scaling"}))
    (tmp_path / "results.json").write_text(json.dumps({"seeds": [1234], **results}))
    assert main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"internalize: error: {tmp_path / 'results.json'}: {message}\n"
    )
    assert not (tmp_path / "report.html").exists()


def test_a_small_results_file_of_the_right_shape_is_reported(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"experiment": "scaling"}))
    summary = {"mean": 0.5, "se": 0.1, "ci_low": None, "ci_high": None, "n": 2}
    (tmp_path / "results.json").write_text(
        json.dumps({"seeds": [1234, 1235], "summary": {"test_mse": summary}, "published": {}})
    )
    assert ">0.5<" in write_report(tmp_path).read_text()
