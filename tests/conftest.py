"""Shared fixtures: run the real `dlfound` command in a subprocess (or, for its error messages, in this process),
offline, with outputs in a temp folder."""

import json
import logging
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
    if check:
        assert_exited_zero(proc)
    return proc


def assert_exited_zero(proc: subprocess.CompletedProcess) -> None:
    """What check=True asks of run_dlfound and dlfound_in_process: exit 0, else the output's tail in the failure."""
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(proc.args)} exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )


@pytest.fixture
def dlfound_in_process(monkeypatch, request):
    """`dlfound ARGS` as `dlfound.cli.main(ARGS)` in this process, answered as run_dlfound answers (exit code,
    stdout, stderr): for error messages, which take milliseconds here and seconds in a process of their own.
    Tests of what only a process shows (signals, exit under a fault, environment read at start) use run_dlfound."""
    # Lightning's logger writes to the stderr of the moment it is first imported: import it before this test's
    # capture starts, whose stream is closed when the test ends.
    import lightning  # noqa: F401
    from hydra.core.global_hydra import GlobalHydra

    from dlfound.cli import main
    from dlfound.runs import console
    from dlfound.runs.in_process import torch_switches_kept

    capsys = request.getfixturevalue("capsys")

    def run(args: list[str], cwd: Path, env: dict | None = None, check: bool = False) -> subprocess.CompletedProcess:
        for name, value in {
            "DLFOUND_DATA": str(cwd / "data"),
            "DLFOUND_OUTPUTS": str(cwd / "outputs"),
            "COLUMNS": "200",
            **(env or {}),
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("DLFOUND_COMMAND", raising=False)
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", [sys.argv[0]])  # `train` hands its arguments to Hydra through sys.argv
        for terminal in (console.console, console.err_console):  # made at import, before COLUMNS was set
            monkeypatch.setattr(terminal, "width", 200)
        root_handlers = list(logging.root.handlers)  # Hydra adds its own to the root logger of this process
        GlobalHydra.instance().clear()
        capsys.readouterr()
        try:
            with torch_switches_kept():  # trainer.deterministic and the like must not reach the next test
                main(args)
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
            if isinstance(exit.code, str):
                print(exit.code, file=sys.stderr)
        finally:
            GlobalHydra.instance().clear()
            os.environ.pop("DLFOUND_COMMAND", None)  # `train` sets it for re-launched DDP ranks
            for handler in set(logging.root.handlers) - set(root_handlers):
                logging.root.removeHandler(handler)
                handler.close()
        out, err = capsys.readouterr()
        proc = subprocess.CompletedProcess(["dlfound", *args], code, out, err)
        if check:
            assert_exited_zero(proc)
        return proc

    return run


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
