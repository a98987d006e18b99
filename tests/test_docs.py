"""The documentation site builds offline in strict mode, and what its pages show runs.

Every ```python block of docs/ runs as written (in a fresh directory, the repository on the
path, as tests/test_readme.py runs the README's); every `internalize ...` command of a bash block
is a valid command line. docs/upstream/ is left out of both: it holds bug reports for upstream
projects whose repros fail on purpose, and mkdocs.yml excludes it from the site.
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from internalize.cli import build_parser
from internalize.experiments import registry

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"
UPSTREAM = DOCS / "upstream"
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}


def doc_pages() -> list[Path]:
    pages = sorted(path for path in DOCS.rglob("*.md") if UPSTREAM not in path.parents)
    assert pages, "no pages under docs/"
    return pages


def code_blocks(languages: set[str]) -> list[tuple[Path, str]]:
    """(page, code) of every fenced block in one of `languages`, page by page."""
    blocks = []
    for page in doc_pages():
        for language, code in re.findall(r"^```(\w+)\n(.*?)^```", page.read_text(), re.S | re.M):
            if language in languages:
                blocks.append((page, code))
    return blocks


def internalize_commands(code: str) -> list[list[str]]:
    """The argument lists of the `internalize` commands in a shell block: continuation lines
    joined, comments dropped, and a line split at `&&`, `||`, `|`, `;` and `&`."""
    commands = []
    for line in code.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        command: list[str] = []
        for token in [*lexer, ";"]:
            if token in {"&&", "||", "|", ";", "&"}:
                if command[:1] == ["internalize"]:
                    commands.append(command[1:])
                command = []
            else:
                command.append(token)
    return commands


def test_docs_site_builds_in_strict_mode_without_warnings(tmp_path):
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(
            module, reason="the docs extra is not installed: pip install -e .[docs]"
        )
    site = tmp_path / "site"
    # Material prints a notice about its own end of life on every build; it says nothing of these
    # docs, and NO_MKDOCS_2_WARNING is its documented switch.
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    built = subprocess.run(
        [
            *(sys.executable, "-m", "mkdocs", "build", "--strict"),
            *("--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(site)),
        ],
        cwd=tmp_path,  # paths in mkdocs.yml are the config's own, not the caller's
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = built.stdout + built.stderr
    assert built.returncode == 0, output
    warnings = [line for line in output.splitlines() if re.search(r"WARNING|ERROR", line)]
    assert not warnings, output
    pages = {path.relative_to(site).as_posix() for path in site.rglob("index.html")}
    for page in (
        "index.html",
        "getting-started/index.html",
        "research-core/index.html",
        "reliability/index.html",
        "fidelity/index.html",
        "notebook/index.html",
        "citing/index.html",
        "changelog/index.html",
        *[f"experiments/{name}/index.html" for name in registry.REGISTRY],
    ):
        assert page in pages, sorted(pages)
    assert not (site / "upstream").exists()
    # The API reference is generated from the docstrings (mkdocstrings), not left empty.
    api = (site / "api" / "experiments-runner" / "index.html").read_text()
    assert "run_experiment" in api and "doc-function" in api
    # Nothing is fetched from elsewhere when a page is read: no web fonts, scripts or styles.
    for html in site.rglob("*.html"):
        text = html.read_text()
        assert "fonts.googleapis" not in text and "fonts.gstatic" not in text, html
        assert not re.search(r"<(script|link)[^>]+(src|href)=\"https?://", text), html
    # Included from the repository's root: the citation and the changelog.
    assert "Value Internalization" in (site / "citing" / "index.html").read_text()


def test_docs_python_blocks_run(tmp_path, monkeypatch):
    blocks = code_blocks({"python"})
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.setattr(registry, "REGISTRY", dict(registry.REGISTRY))
    for page, code in blocks:
        exec(compile(code, str(page), "exec"), {"__name__": "docs"})


def test_docs_internalize_commands_are_valid_command_lines(capsys):
    commands = [
        (page, command)
        for page, code in code_blocks(SHELL_LANGUAGES)
        for command in internalize_commands(code)
    ]
    assert len(commands) >= 20
    parser = build_parser()
    for page, command in commands:
        try:
            parser.parse_args(command)
        except SystemExit as stop:  # --help and --version exit 0; a bad command line exits 2
            assert stop.code == 0, f"{page.relative_to(ROOT)}: internalize {shlex.join(command)}"
    # Every experiment has a page with its command.
    shown = {tuple(command[:2]) for _, command in commands}
    assert {("reproduce", name) for name in registry.REGISTRY} <= shown
    capsys.readouterr()


def test_internalize_commands_are_found_and_bad_ones_fail():
    """The checker itself: it finds commands after `&&` and across continuation lines, and a
    wrong option would fail the test above."""
    code = "pip install . && internalize reproduce all  # run\ninternalize sweep retention \\\n"
    code += '    --grid isr_threshold=0.1,0.2 --out "runs/x y"\nray start --head\n'
    assert internalize_commands(code) == [
        ["reproduce", "all"],
        ["sweep", "retention", "--grid", "isr_threshold=0.1,0.2", "--out", "runs/x y"],
    ]
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(["reproduce", "retention", "--no-such-option"])
    assert stop.value.code == 2


def test_getting_started_shows_the_readme_s_two_commands():
    first = re.compile(r"```bash\n(.*?)```", re.S)
    readme = first.search((ROOT / "README.md").read_text()).group(1)
    page = first.search((DOCS / "getting-started.md").read_text()).group(1)
    assert page == readme
