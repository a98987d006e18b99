"""The release: license, citation, one version everywhere, and a wheel that installs and runs."""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

import internalize
from internalize.cli import main

ROOT = Path(__file__).parents[1]
PAPER = "Value Internalization: Learning and Generalizing from Social Reward"


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def citation() -> dict:
    yaml = pytest.importorskip("yaml", reason="pyyaml is in the test extra")
    data = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert isinstance(data, dict), "CITATION.cff is not a YAML mapping"
    return data


def changelog_top() -> tuple[str, str]:
    """(version, date) of CHANGELOG.md's first `## VERSION - DATE` entry."""
    match = re.search(
        r"^## (\S+) - (\d{4}-\d{2}-\d{2})$", (ROOT / "CHANGELOG.md").read_text(), re.M
    )
    assert match, "CHANGELOG.md has no `## VERSION - YYYY-MM-DD` entry"
    return match.group(1), match.group(2)


def test_license_is_mit_and_declared():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert "Copyright (c) 2026 the internalize authors" in text
    project = pyproject()["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]


def test_citation_cff_describes_the_tool_and_the_paper():
    data = citation()
    assert data["cff-version"] == "1.2.0"
    assert data["type"] == "software" and data["title"] == "internalize"
    assert data["license"] == "MIT"
    assert str(data["date-released"]) == "2026-12-01"
    assert data["authors"] and all("name" in a or "family-names" in a for a in data["authors"])
    (paper,) = [ref for ref in data["references"] if ref["title"] == PAPER]
    assert paper["type"] == "conference-paper" and paper["year"] == 2024
    assert [(a["given-names"], a["family-names"]) for a in paper["authors"]] == [
        ("Frieda", "Rong"),
        ("Max", "Kleiman-Weiner"),
    ]
    assert "RLC" in paper["conference"]["name"]
    assert not {"doi", "url"} & set(paper)  # none was published with the reference we hold


def test_one_version_everywhere():
    """`internalize.__version__` is the one place; pyproject reads it, CITATION.cff and the
    changelog's top entry repeat it."""
    version, date = changelog_top()
    data = citation()
    assert internalize.__version__ == version == str(data["version"])
    assert str(data["date-released"]) == date
    project = pyproject()
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "internalize.__version__"


def test_version_is_read_without_importing_the_package():
    """setuptools reads `attr` statically when it is a plain literal assignment, so building
    does not import internalize (and with it gymnasium and jax)."""
    tree = ast.parse((ROOT / "src" / "internalize" / "__init__.py").read_text())
    literals = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and [getattr(t, "id", None) for t in node.targets] == ["__version__"]
        and isinstance(node.value, ast.Constant)
    ]
    assert literals == [internalize.__version__]


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"internalize {internalize.__version__}"


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.slow
def test_sdist_and_wheel_build_check_install_and_run(tmp_path):
    """`python -m build` (the sdist, then the wheel from it, in an isolated environment that
    fetches setuptools from the index), `twine check --strict`, then the wheel in a fresh
    virtual environment: `internalize --version` and a tiny retention run. The venv sees the
    system's packages (jax is large) but installs the wheel itself, so it imports the wheel's
    internalize, not this checkout's. About 2 minutes on a 2-core CPU."""
    pytest.importorskip("build", reason="build is in the test extra")
    pytest.importorskip("twine", reason="twine is in the test extra")
    # A copy of the checkout, so the build writes nothing (egg-info, build/) into it.
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", "runs", "build", "dist", "site", "*.egg-info", "__pycache__", ".*_cache",
            ".hypothesis", ".venv", "venv",
        ),
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "build", "--outdir", str(dist), str(source)], env=env, timeout=600)
    version = internalize.__version__
    sdist, wheel = (
        dist / f"internalize-{version}.tar.gz",
        dist / f"internalize-{version}-py3-none-any.whl",
    )
    assert sorted(dist.iterdir()) == sorted([sdist, wheel])
    run([sys.executable, "-m", "twine", "check", "--strict", str(sdist), str(wheel)], env=env)

    with tarfile.open(sdist) as archive:
        carried = {
            Path(name).relative_to(f"internalize-{version}").as_posix()
            for name in archive.getnames()
        }
    assert {"LICENSE", "README.md", "CITATION.cff", "CHANGELOG.md", "pyproject.toml"} <= carried
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(f"internalize-{version}.dist-info/METADATA").decode()
    assert f"internalize-{version}.dist-info/licenses/LICENSE" in names
    assert "internalize/envs/data/boulder_tree_layouts.npy" in names
    assert "License-Expression: MIT" in metadata.splitlines()
    assert f"Version: {version}" in metadata.splitlines()

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], env=env)
    python, command = venv / "bin" / "python", venv / "bin" / "internalize"
    pip = [str(python), "-m", "pip", "install", "--no-deps", "--force-reinstall", "--no-index"]
    run([*pip, str(wheel)], env=env, cwd=tmp_path, timeout=300)
    where = run(
        [str(python), "-c", "import internalize; print(internalize.__file__)"],
        env=env,
        cwd=tmp_path,
    )
    assert Path(where.stdout.strip()).resolve().is_relative_to(venv.resolve()), where.stdout
    shown = run([str(command), "--version"], env=env, cwd=tmp_path)
    assert shown.stdout.strip() == f"internalize {version}"

    out = tmp_path / "retention"
    tiny = ["--seeds", "1", "--socialize-steps", "4096", "--autonomy-steps", "4096"]
    run(
        [str(command), "reproduce", "retention", *tiny, "--quiet", "--out", str(out)],
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    results = json.loads((out / "results.json").read_text())
    assert results["experiment"] == "retention" and results["seeds"] == [1234]
    assert set(results["conditions"]) == {"oracle", "none", "isr"}
