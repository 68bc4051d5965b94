"""The notebooks in docs/notebooks run in a real Jupyter kernel (nbclient + ipykernel), offline on the digits, and
show what they promise: metrics, curves, predictions, pictures inline, a sweep's report. (No lecture figure: the
smallest, `perceptron`, takes minutes on a shared CPU, its runs being processes of their own.)"""

import os
import time
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow
NOTEBOOKS = REPO / "docs" / "notebooks"


def execute(name: str, folder: Path) -> list[dict]:
    """Run the notebook with the kernel's working directory in `folder` (where its runs land); its cells."""
    nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed: pip install -e .[dev]")
    import nbformat

    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    # The kernel inherits this environment: dlfound from this checkout, runs and data in the test's folder, one
    # thread per small-tensor run on a shared CPU.
    os.environ.update(
        DLFOUND_OUTPUTS=str(folder / "outputs"),
        DLFOUND_DATA=str(folder / "data"),
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    )
    started = time.time()
    nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute()
    print(f"{name}.ipynb ran in {time.time() - started:.1f} s")
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def text(cell) -> str:
    """What the cell showed as text: its stream output and the plain text of its result."""
    parts = [o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == "stdout"]
    parts += [
        o["data"].get("text/plain", "") for o in cell.outputs if o.output_type in ("execute_result", "display_data")
    ]
    return "".join(parts)


def shows_picture(cell) -> bool:
    return any("image/png" in o.get("data", {}) for o in cell.outputs)


@pytest.fixture(autouse=True)
def restore_environment():
    before = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(before)


def test_quickstart_trains_shows_curves_and_predicts(tmp_path):
    cells = execute("quickstart", tmp_path)
    assert "status='done'" in text(cells[0]) and "Epoch 2/2" in text(cells[0])  # the progress bar rendered
    assert float(text(cells[1])) > 0.6  # the test accuracy of 3 epochs on the digits
    assert sorted(eval(text(cells[2]))) == [0, 1, 2]  # {epoch: val/acc}
    predicted, true = (eval(line.split(":", 1)[1]) for line in text(cells[3]).splitlines())
    assert sum(p == t for p, t in zip(predicted, true, strict=True)) >= 6
    assert eval(text(cells[4]))[:2] == ("MLP", False)


def test_generative_shows_a_sample_grid_inline(tmp_path):
    cells = execute("generative", tmp_path)
    assert "test/nelbo" in text(cells[0])
    assert eval(text(cells[1]))[0] > 64  # 8 digits of 8 pixels with padding per row
    assert shows_picture(cells[2])
    assert eval(text(cells[3])) == (16, 1, 8, 8)


def test_sweep_reports_its_runs(tmp_path):
    cells = execute("sweep", tmp_path)
    assert eval(text(cells[1])) == [True, True]
    rows = [line.split() for line in text(cells[2]).splitlines()]
    assert sorted(row[0] for row in rows) == ["0.001", "0.01"] and all(row[2] == "done" for row in rows)
