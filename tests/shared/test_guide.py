"""docs/adding_a_project.md builds a whole project: build it from the page's code and train it, so the guide
a newcomer follows alone is one that runs."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, cli_env, last_line
from tests.shared.test_projects import project_problems

GUIDE = REPO / "docs" / "adding_a_project.md"
# run a package that lives outside projects/ as if it were inside: projects.<name> resolves to it
BOOT = (
    "import sys, projects; projects.__path__.append(sys.argv[1]); "
    "from projects.two_moons import PROJECT; from shared.cli import main; "
    "sys.exit(main(PROJECT, sys.argv[2:]))"
)


def guide_files() -> dict[str, str]:
    """{path: text} of every ```python block that starts with a `# projects/...` line."""
    blocks = re.findall(r"```python\n# (projects/\S+)\n(.*?)```", GUIDE.read_text(), flags=re.S)
    return {path: text for path, text in blocks}


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("guide")
    for path, text in guide_files().items():
        target = root / Path(path).relative_to("projects")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root


def guide_cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BOOT, str(root), *args],
        cwd=root,
        env=cli_env(root),
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_guide_gives_every_file_of_its_project():
    files = guide_files()
    for name in ("__init__.py", "__main__.py", "data.py", "model.py", "evaluate.py", "export.py"):
        assert f"projects/two_moons/{name}" in files, f"the guide has no projects/two_moons/{name}"


def test_the_guides_project_keeps_the_protocol(package, monkeypatch):
    import projects

    monkeypatch.setattr(projects, "__path__", [*projects.__path__, str(package)])
    try:
        project = importlib.import_module("projects.two_moons").PROJECT
        assert project_problems("two_moons", project) == []
    finally:
        for module in [m for m in sys.modules if m.startswith("projects.two_moons")]:
            del sys.modules[module]


def test_the_guides_project_trains_exports_and_checks_its_flags(package):
    run_dir = package / "run"
    result = guide_cli(package, "train", "--smoke", "--epochs", "8", "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    assert last_line(result.stdout) == str(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.8, metrics  # chance is 0.5; the moons are learnable
    assert metrics["export_max_abs_diff_probability"] < 1e-5
    state = json.loads((run_dir / "state.json").read_text())
    assert set(state) == {"mean", "std"} and len(state["mean"]) == 2
    assert json.loads((run_dir / "config.json").read_text())["run"]["options"] == {"noise": 0.2}

    bad = guide_cli(package, "train", "--smoke", "--noise", "3", "--run-dir", str(package / "bad"))
    assert bad.returncode == 2 and "--noise must be between 0 and 1; got 3.0" in bad.stderr, bad.stderr
    assert not (package / "bad").exists(), "a bad flag must stop the command before it makes a run folder"
