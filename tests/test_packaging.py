"""dlfound works from an installed wheel, from any working directory, with its config tree inside it."""

import os
import shutil
import subprocess
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
import zipfile
from pathlib import Path

from conftest import REPO, read_results, run_folders


def not_in_a_fresh_clone(folder: str, names: list[str]) -> set[str]:
    at_top = {".git", ".venv", "build", "outputs", "multirun", "data"} if Path(folder) == REPO else set()
    return {n for n in names if n in at_top or n == "__pycache__" or n.endswith((".egg-info", "_cache"))}


def test_pyproject_lists_every_package_and_config_folder():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    code = {".".join(p.parent.relative_to(REPO / "src").parts) for p in (REPO / "src").rglob("__init__.py")}
    configs = {
        ".".join(("dlfound", "configs", *p.relative_to(REPO / "configs").parts))
        for p in [REPO / "configs", *(REPO / "configs").rglob("*")]
        if p.is_dir() and p.name != "__pycache__"
    }
    assert code | configs == listed, (
        f"add {(code | configs) - listed} to [tool.setuptools] packages and remove {listed - (code | configs)}"
    )


def test_wheel_ships_the_configs_and_trains_from_anywhere(tmp_path):
    # Built from a copy, as from a fresh clone: setuptools leaves build/ and an egg-info in the tree it builds,
    # and stale modules in an old build/ would ship in the next wheel.
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=not_in_a_fresh_clone)
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "wheel"),
            str(source),
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    assert "Warning" not in build.stdout + build.stderr, "the build warns about our packaging"
    [wheel] = (tmp_path / "wheel").glob("dlfound-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = {f"dlfound/configs/{p.relative_to(REPO / 'configs')}" for p in (REPO / "configs").rglob("*.yaml")}
    assert configs and configs <= names
    modules = {str(p.relative_to(REPO / "src")) for p in (REPO / "src").rglob("*.py")}
    assert modules <= names
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)],
        check=True,
        capture_output=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "DLFOUND_OUTPUTS": str(elsewhere / "outputs")}
    env.pop("DLFOUND_COMMAND", None)
    code = "import dlfound.runs.paths, sys; print(dlfound.runs.paths.config_dir())"
    where = subprocess.run(
        [sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert where.startswith(str(tmp_path / "site"))
    subprocess.run(
        [sys.executable, "-m", "dlfound", "train", "debug=fast", "print_config=false"],
        cwd=elsewhere,
        env=env,
        check=True,
        capture_output=True,
    )
    [folder] = run_folders(elsewhere / "outputs")
    assert read_results(folder)["status"] == "done"
