"""scripts/compare_generative.py: tiny runs of several generative families (and a classifier for the features)
scored in one table, as a user runs the script; and its refusals, one paragraph each."""

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, read_results, run_dlfound, run_folders

SCRIPT = REPO / "scripts" / "compare_generative.py"
QUIET = ["callbacks.progress_bar=null", "callbacks.model_summary=null", "print_config=false"]
# (experiment name, its config): tiny enough that one multirun of all of them takes seconds.
JOBS = {
    "c_vae": "defaults:\n  - override /data: digits\n  - override /model: vae\n  - override /task: vae\n"
    "task:\n  iw_samples: 2\n",
    "c_flow": "defaults:\n  - override /data: digits\n  - override /model: realnvp\n  - override /task: flow\n"
    "model:\n  hidden: 16\n  blocks: 1\n",
    "c_ddpm": "defaults:\n  - override /data: digits\n  - override /model: ddpm_unet\n  - override /task: ddpm\n"
    "model:\n  base_channels: 8\n  num_res_blocks: 1\n"
    "task:\n  timesteps: 50\n  sampler: ddim\n  sample_steps: 5\n  test_samples: 32\n",
    "c_ring": "defaults:\n  - ring8_ddpm\nmodel:\n  hidden: [32, 32]\n  embed_dim: 16\ntask:\n  timesteps: 50\n",
    "c_mlp": "defaults:\n  - override /data: digits\n  - override /model: mlp\nmodel:\n  hidden: [32]\n",
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One short epoch of each job, as `dlfound train -m` writes them: {experiment: run folder}."""
    root = tmp_path_factory.mktemp("compare")
    folder = root / "configs" / "experiment"
    folder.mkdir(parents=True)
    for name, body in JOBS.items():
        folder.joinpath(f"{name}.yaml").write_text(f"# @package _global_\n{body}")
    run_dlfound(
        [
            "train",
            "--config-dir",
            str(root / "configs"),
            "-m",
            f"experiment={','.join(JOBS)}",
            "debug=limit",
            "trainer.max_epochs=1",
            "trainer.limit_test_batches=1",
            *QUIET,
        ],
        root,
        env={"OMP_NUM_THREADS": "1"},
    )
    found = {read_results(f)["choices"]["experiment"]: f for f in run_folders(root / "outputs")}
    assert set(found) == set(JOBS)
    return found


def run_script(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "COLUMNS": "200",
        "PYTHONWARNINGS": "ignore",
        "DLFOUND_DATA": str(cwd / "data"),
    }
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def table(runs, tmp_path_factory):
    """The script over a VAE (its run folder and its last checkpoint), a flow, a DDPM with its configured DDIM
    and with ancestral sampling, and a DDPM on the 8-Gaussian ring, with a classifier's features."""
    cwd = tmp_path_factory.mktemp("table")
    features = runs["c_mlp"] / "checkpoints" / "last.ckpt"
    markdown = cwd / "table.md"
    proc = run_script(
        [
            f"features={features}",
            "n=100",
            "n2d=500",
            f"markdown={markdown}",
            str(runs["c_vae"]),
            str(runs["c_vae"] / "checkpoints" / "last.ckpt"),
            str(runs["c_flow"]),
            str(runs["c_ddpm"]),
            f"{runs['c_ddpm']}@ddpm:20",
            str(runs["c_ring"]),
        ],
        cwd,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, json_lines(proc.stdout), markdown


def test_image_rows_share_samples_features_and_columns(runs, table):
    _, rows, _ = table
    images = [r for r in rows if r["kind"] == "images" and not r.get("floor")]
    assert [r["family"] for r in images] == ["vae", "vae", "flow", "ddpm", "ddpm"]
    for r in images:
        assert r["n"] == 100 and r["n_real"] == 100 and r["data"] == "digits"
        assert math.isfinite(r["fid"]) and r["fid"] >= 0 and math.isfinite(r["kid"])
        assert r["params"] > 0 and r["sample_s_per_1k"] > 0
        assert r["epochs"] == 1 and 0 < r["train_time_s"] <= r["wall_time_s"]
        assert r["features"].endswith("last.ckpt")
    vae_best, vae_last, flow, ddim, ddpm = images
    # A run folder gives the checkpoint it was tested on; a checkpoint file is taken as given, and its run
    # folder still gives the training time.
    assert vae_best["checkpoint"] == read_results(runs["c_vae"])["monitor"]["best_checkpoint"]
    assert vae_last["checkpoint"].endswith("last.ckpt") and vae_last["train_time_s"] == vae_best["train_time_s"]
    # Bits/dim where the run measured them (flows, diffusion on images), none for VAEs.
    assert vae_best["bits_per_dim"] is None
    assert flow["bits_per_dim"] == read_results(runs["c_flow"])["metrics"]["test/bpd"] > 0
    assert ddim["bits_per_dim"] == read_results(runs["c_ddpm"])["metrics"]["test/bpd"] > 0
    # The diffusion model samples as configured (DDIM, 5 steps) or as the argument asks; other families directly.
    assert (ddim["sampler"], ddim["network_evals"]) == ("ddim 5", 5)
    assert (ddpm["sampler"], ddpm["network_evals"]) == ("ddpm 20", 20)
    assert vae_best["sampler"] == flow["sampler"] == "direct"
    assert ddpm["params"] == ddim["params"]
    # The parameters of the trained network (not its average), as the run counted them.
    assert flow["params"] == read_results(runs["c_flow"])["num_params"]


def test_point_rows_and_the_floor_of_two_draws_of_the_data(table):
    _, rows, _ = table
    [ring] = [r for r in rows if r["kind"] == "2d" and not r.get("floor")]
    [floor] = [r for r in rows if r["kind"] == "2d" and r.get("floor")]
    assert ring["n"] == 500 and ring["modes"] == 8 and ring["sampler"] == "ddpm 50"
    assert 0 <= ring["modes_covered"] <= 8 and 0 <= ring["hq_fraction"] <= 1 and 0 <= ring["weight_error"] <= 1
    assert math.isfinite(ring["mmd"]) and ring["train_time_s"] > 0
    # Two draws of the ring: every mode, nearly every point of high quality, MMD near zero and below the model's.
    assert floor["modes_covered"] == 8 and floor["hq_fraction"] > 0.95 and abs(floor["mmd"]) < 0.02
    assert floor["mmd"] < ring["mmd"]
    [image_floor] = [r for r in rows if r["kind"] == "images" and r.get("floor")]
    assert image_floor["fid"] < min(r["fid"] for r in rows if r["kind"] == "images" and not r.get("floor"))


def test_markdown_tables_are_ready_for_the_readme(table):
    proc, rows, markdown = table
    text = markdown.read_text()
    assert (
        "| model | family | data | sampler | params | epochs | training | bits/dim | FID | KID | "
        "sampling / 1k |" in text
    )
    assert (
        "| model | family | data | sampler | params | epochs | training | modes | high quality | "
        "weight error | MMD² | sampling / 1k |" in text
    )
    assert "100 samples per model" in text and "500 samples per model" in text
    body = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| model")]
    assert len(body) == len(rows)  # one line per model, plus the data's own rows
    assert any(line.startswith("| c_vae [") and "| – |" in line for line in body)  # the VAE has no bits/dim
    assert any("ddim 5" in line for line in body) and any("ddpm 20" in line for line in body)
    assert "Images" in proc.stdout and "2-D mixtures" in proc.stdout  # the rich tables


# -- refusals --------------------------------------------------------------------------------------------------
def load_script():
    spec = importlib.util.spec_from_file_location("compare_generative", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def capsys(capsys, monkeypatch):
    """The error panel on one wide line, so messages read as text. The console reads COLUMNS when it is created,
    which may be before this test (another module of the same pytest worker), so its width is set too."""
    from dlfound.runs.console import err_console

    monkeypatch.setenv("COLUMNS", "2000")
    monkeypatch.setattr(err_console, "_width", 2000)
    return capsys


def refusal(args: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        load_script().main(args)
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    assert err.count("dlfound: error") == 1 and "Traceback" not in err
    return " ".join(err.replace("│", " ").split())


def test_refuses_a_path_that_is_neither_checkpoint_nor_run(tmp_path, capsys):
    assert "neither a checkpoint nor a run folder" in refusal([str(tmp_path / "missing")], capsys)
    (tmp_path / "empty").mkdir()
    assert "not a dlfound run folder" in refusal([str(tmp_path / "empty")], capsys)
    (tmp_path / "notes.ckpt").write_text("not a checkpoint")
    assert "notes.ckpt" in refusal([str(tmp_path / "notes.ckpt")], capsys)
    assert "at least one run folder" in refusal(["n=10"], capsys)
    assert "does not take 'nn'" in refusal(["nn=10", str(tmp_path)], capsys)


def test_refuses_a_classifier_and_an_unknown_sampler(runs, capsys):
    message = refusal([f"features={runs['c_mlp'] / 'checkpoints' / 'last.ckpt'}", str(runs["c_mlp"])], capsys)
    assert "not a generative model" in message and "ClassificationTask" in message
    message = refusal(["n=10", "n2d=10", f"{runs['c_ring']}@ancestral"], capsys)
    assert "ancestral" in message and "ddpm, ddim" in message
    message = refusal(["n=10", f"{runs['c_vae']}@ddim:5", "features=pixels"], capsys)
    assert "@SAMPLER applies to diffusion and score models" in message


def test_image_models_need_features_and_are_refused_before_sampling(runs, capsys):
    message = refusal([str(runs["c_ring"]), str(runs["c_vae"])], capsys)
    assert "is an image model" in message and "dlfound train experiment=mnist_lenet5 trainer.max_epochs=2" in message
    assert str(runs["c_ring"]) not in message  # only the image model is named


def test_refusals_read_the_same_from_the_command_line(tmp_path):
    proc = run_script(["n=5", str(tmp_path / "missing")], tmp_path)
    assert proc.returncode != 0 and proc.stdout.strip() == ""
    assert "Traceback" not in proc.stderr and proc.stderr.count("dlfound: error") == 1
    assert "neither a checkpoint nor a run folder" in " ".join(proc.stderr.replace("│", " ").split())
