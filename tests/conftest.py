"""Shared test helpers: run a project's real command line in a subprocess, on tiny data, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def cli_env(tmp_dir: Path, **extra: str) -> dict[str, str]:
    """No dataset mirror, no downloads, no GPU, quiet TensorFlow; the repo importable from anywhere."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "DATA_DIR")}
    env.update(
        PYTHONPATH=str(REPO),
        DATA_DIR=str(tmp_dir / "no-data"),
        DATA_OFFLINE="1",
        CUDA_VISIBLE_DEVICES="",
        TF_CPP_MIN_LOG_LEVEL="2",
        **extra,
    )
    return env


def cli_command(project: str, *args: str) -> list[str]:
    return [sys.executable, "-m", f"projects.{project}", *args]


def run_cli(
    project: str, *args: str, cwd: Path, timeout: int = 600, **env: str
) -> subprocess.CompletedProcess:
    """`python -m projects.<project> ARGS` from `cwd` (so a stray runs/ folder lands in a temp dir)."""
    return subprocess.run(
        cli_command(project, *args),
        cwd=cwd,
        env=cli_env(cwd, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_script(script: str, *args: str, cwd: Path, timeout: int = 300) -> dict:
    """`python -c SCRIPT ARGS` in the CLI's environment (a fresh process, so it can split the CPU into
    replicas before TensorFlow starts); returns the JSON object the script prints last."""
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=cwd,
        env=cli_env(cwd),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(last_line(result.stdout))


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """In-process tests see no cluster and no data folder from the machine they run on."""
    for name in ("TF_CONFIG", "DATA_DIR", "DATA_OFFLINE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("session")
