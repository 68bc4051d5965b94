"""Shared fixtures: run the real `dlfound` command in a subprocess, offline, with outputs in a temp folder."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def run_dlfound(
    args: list[str], cwd: Path, env: dict | None = None, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess:
    """`dlfound ARGS` as a user would type it; outputs land under cwd/outputs, data under cwd/data."""
    full_env = {
        **os.environ,
        "DLFOUND_DATA": str(cwd / "data"),
        "DLFOUND_OUTPUTS": str(cwd / "outputs"),
        "COLUMNS": "200",
        "PYTHONWARNINGS": "ignore",
        **(env or {}),
    }
    full_env.pop("DLFOUND_COMMAND", None)
    proc = subprocess.run(
        [sys.executable, "-m", "dlfound", *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"dlfound {' '.join(args)} exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def run_folders(root: Path) -> list[Path]:
    """Every run folder (one per results.json) under root, oldest first."""
    return sorted((p.parent for p in root.rglob("results.json")), key=lambda p: p.stat().st_mtime)


def read_results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


@pytest.fixture(scope="module")
def one_thread():
    """Small tensors on a shared CPU: one thread is many times faster than several competing for the cores.
    Modules of small-tensor tests use it with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path
