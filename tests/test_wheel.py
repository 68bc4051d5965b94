"""The pip user's path: the wheel, installed into a fresh virtual environment, trains, lists, answers every
command's --help and runs the Python API's quickstart from an empty folder outside any clone; building it leaves
the source tree as it was."""

import os
import shutil
import site
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow
# What a copy of the checkout needs to build the wheel; never build output, runs or environments.
IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "outputs", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache"
)


def git_status() -> list[str]:
    """Changed, new and ignored files (build/, *.egg-info), less the caches that running the tests writes."""
    lines = subprocess.run(
        ["git", "status", "--porcelain", "--ignored"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return [line for line in lines if "__pycache__" not in line and ".pytest_cache" not in line]


def test_the_wheel_installs_trains_and_answers_from_an_empty_folder(tmp_path):
    started = time.time()
    before = git_status()
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=IGNORED)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "wheel"),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    [wheel] = (tmp_path / "wheel").glob("dlfound-*.whl")
    assert git_status() == before, "building the wheel changed the source tree"

    # A fresh environment that reuses this one's dependencies (a .pth line adds their folder), not dlfound itself:
    # the wheel's copy comes first on the path.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    venv_site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(venv_site) / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
        check=True,
        capture_output=True,
    )

    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DLFOUND_COMMAND", "VIRTUAL_ENV")}
    env.update(DLFOUND_DATA=str(empty / "data"), COLUMNS="200", OMP_NUM_THREADS="1")

    def run(*args: str) -> str:
        proc = subprocess.run(args, check=False, cwd=empty, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, (
            f"{' '.join(args)} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
        return proc.stdout

    where = run(str(python), "-c", "import dlfound; print(dlfound.__file__)")
    assert where.startswith(venv_site), f"dlfound came from {where}, not from the wheel"
    dlfound = str(venv / "bin" / "dlfound")
    run(dlfound, "train", "trainer.max_epochs=1", "print_config=false")
    assert len(list((empty / "outputs" / "train" / "runs").glob("*/results.json"))) == 1
    assert "mlp" in run(dlfound, "list")
    from dlfound.cli import COMMANDS

    assert "usage" in run(dlfound, "--help")
    for name in COMMANDS:
        assert run(dlfound, name, "--help").strip(), f"dlfound {name} --help printed nothing"
    quickstart = "import dlfound; run = dlfound.train('trainer.max_epochs=1'); print(run.metrics)"
    assert "test/acc" in run(str(python), "-c", quickstart)
    print(f"wheel test took {time.time() - started:.1f} s")
