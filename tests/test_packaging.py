"""dlfound works from an installed wheel, from any working directory, with its config tree inside it."""

import os
import subprocess
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
import zipfile

from conftest import REPO, read_results, run_folders


def test_every_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO / "src").parts) for p in (REPO / "src").rglob("__init__.py")}
    assert found <= listed, f"add {found - listed} to [tool.setuptools] packages"


def test_wheel_ships_the_configs_and_trains_from_anywhere(tmp_path):
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
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    [wheel] = (tmp_path / "wheel").glob("dlfound-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = {f"dlfound/configs/{p.relative_to(REPO / 'configs')}" for p in (REPO / "configs").rglob("*.yaml")}
    assert configs and configs <= names
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
