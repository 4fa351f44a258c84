"""Every package under projects/ keeps the protocol the harness drives (`shared/project.py`), and its tests
check on a trained run that the run folder is all its model needs (tests/project_checks.py)."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from pathlib import Path

import pytest

from shared.project import Project
from tests.project_checks import CHECK

PACKAGES = Path(__file__).resolve().parents[2] / "projects"
TESTS = Path(__file__).resolve().parents[1] / "projects"
DIRECTIONS = ("min", "max")


def packages() -> list[str]:
    """Every folder under projects/ that holds Python code: a new package is checked without being listed."""
    return sorted(p.name for p in PACKAGES.iterdir() if p.is_dir() and any(p.glob("*.py")))


def problems(name: str) -> list[str]:
    """What keeps projects/<name> from working with the harness; [] when nothing does."""
    folder = PACKAGES / name
    found = [
        f"projects/{name}/{file} is missing: {why}"
        for file, why in (
            ("__init__.py", "it defines PROJECT = Project(...)"),
            ("__main__.py", "it runs `sys.exit(main(PROJECT))`, so `python -m projects.NAME` works"),
            ("README.md", "it gives the data, the model, the measured result and its command"),
        )
        if not (folder / file).is_file()
    ]
    if found:
        return found
    try:
        project = getattr(importlib.import_module(f"projects.{name}"), "PROJECT", None)
    except Exception as e:  # any import failure is the problem to report
        return [f"projects.{name} does not import: {type(e).__name__}: {e}"]
    if not isinstance(project, Project):
        return [f"projects/{name}/__init__.py must define PROJECT = Project(...) (shared.project.Project)"]
    return project_problems(name, project)


def project_problems(name: str, project: Project) -> list[str]:
    found = []
    if project.name != name:
        found.append(f"PROJECT.name is {project.name!r}: it must be the package name {name!r}")
    if project.objective_direction not in DIRECTIONS:
        found.append(f"objective_direction must be 'min' or 'max', not {project.objective_direction!r}")
    arities = {
        "load_data": 1,
        "build_model": 2,
        "evaluate": 4,
        "serving_endpoint": 2,
        "page_info": 1,
        "examples": 1,
        "for_hparams": 2,
        "after_fit": 2,
        "extra_endpoints": 2,
        "callbacks": 2,
    }
    for field_name, arity in arities.items():
        function = getattr(project, field_name)
        if function is None:
            continue
        if not callable(function):
            found.append(f"PROJECT.{field_name} must be a function, not {type(function).__name__}")
        elif not _takes(function, arity):
            found.append(f"PROJECT.{field_name} must take {arity} argument(s) (see shared/project.py)")
    for field_name in ("state_type", "options"):
        kind = getattr(project, field_name)
        if kind is not None and not (isinstance(kind, type) and dataclasses.is_dataclass(kind)):
            found.append(f"PROJECT.{field_name} must be a dataclass (a class, not an instance)")
    if project.options is not None and dataclasses.is_dataclass(project.options):
        for field in dataclasses.fields(project.options):
            if not field.metadata.get("help"):
                found.append(f"option {field.name} has no help: declare it with shared.options.option(...)")
    return found


def _takes(function, count: int) -> bool:
    """Whether `function` can be called with `count` positional arguments."""
    try:
        inspect.signature(function).bind(*range(count))
        return True
    except TypeError:
        return False


@pytest.mark.parametrize("name", packages())
def test_every_package_keeps_the_protocol(name):
    found = problems(name)
    assert not found, f"projects/{name} breaks the protocol (see shared/project.py):\n  " + "\n  ".join(found)
    tests = [path.read_text() for path in TESTS.glob(f"test_{name}*.py")]
    assert any(f"{CHECK}(" in text for text in tests), (
        f"tests/projects/test_{name}.py must call tests.project_checks.{CHECK}({name!r}, RUN, tmp_path) "
        "on a run it trained"
    )


def test_the_protocol_check_names_what_is_wrong(tmp_path):
    good = project_of("mnist_cnn")
    assert project_problems("mnist_cnn", good) == []
    bad = dataclasses.replace(
        good, name="mnist", objective_direction="up", evaluate=lambda model: {}, state_type=dict()
    )
    found = " | ".join(project_problems("mnist_cnn", bad))
    assert "PROJECT.name is 'mnist': it must be the package name 'mnist_cnn'" in found
    assert "objective_direction must be 'min' or 'max', not 'up'" in found
    assert "PROJECT.evaluate must take 4 argument(s)" in found
    assert "PROJECT.state_type must be a dataclass" in found


def project_of(name: str):
    return importlib.import_module(f"projects.{name}").PROJECT
