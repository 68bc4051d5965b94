"""GPUs for jobs that run side by side: what the machine shows, and one holder per GPU at a time."""

import threading
import time

import pytest

from conftest import run_dlfound
from dlfound.errors import ConfigError
from dlfound.runs.gpus import hold_gpus, visible_gpus


def test_visible_gpus_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 3,GPU-5f1c")
    assert visible_gpus() == ["2", "3", "GPU-5f1c"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,-1,2")
    assert visible_gpus() == ["1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []


def test_jobs_side_by_side_never_share_a_gpu(monkeypatch, tmp_path):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    gpus = ["0", "1", "2"]
    holders: dict[str, int] = {}
    clashes, used = [], []
    lock = threading.Lock()

    def job(needed: int) -> None:
        with hold_gpus(needed, gpus, poll_s=0.01) as held:
            with lock:
                clashes.extend(g for g in held if holders.get(g))
                for g in held:
                    holders[g] = holders.get(g, 0) + 1
                used.append(held)
            time.sleep(0.05)
            with lock:
                for g in held:
                    holders[g] -= 1

    threads = [threading.Thread(target=job, args=(n,)) for n in (1, 2, 1, 1, 3, 2, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not clashes
    assert sorted(len(h) for h in used) == [1, 1, 1, 1, 2, 2, 3]
    assert all(set(h) <= set(gpus) for h in used)


def test_a_job_asking_for_more_gpus_than_the_machine_has_is_refused():
    with pytest.raises(ConfigError, match="asks for 4 GPU"):
        with hold_gpus(4, ["0", "1"]):
            pass


def test_the_gpus_launcher_runs_one_job_per_gpu(workdir):
    proc = run_dlfound(
        ["train", "hydra/launcher=gpus", "--cfg", "hydra", "--resolve", "-p", "hydra.launcher.n_jobs"],
        workdir,
        env={"CUDA_VISIBLE_DEVICES": "0,1,2"},
    )
    assert proc.stdout.strip() == "3"


def test_the_gpus_launcher_without_gpus_says_so(workdir):
    proc = run_dlfound(
        ["train", "-m", "hydra/launcher=gpus", "optim.lr=0.1,0.01"],
        workdir,
        env={"CUDA_VISIBLE_DEVICES": ""},
        check=False,
    )
    assert proc.returncode != 0 and "shows no GPU" in proc.stderr and "hydra/launcher=parallel" in proc.stderr
    assert not list(workdir.rglob("results.json"))


@pytest.mark.gpu
def test_a_parallel_gpu_sweep_gives_each_job_its_own_gpu(workdir):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a GPU")
    from conftest import read_results, run_folders

    run_dlfound(
        [
            "train",
            "-m",
            "hydra/launcher=gpus",
            "trainer=gpu",
            "optim.lr=0.1,0.01,0.003",
            "trainer.max_epochs=1",
            "print_config=false",
            "callbacks=none",
            "logger=none",
        ],
        workdir,
    )
    results = [read_results(f) for f in run_folders(workdir / "outputs")]
    assert len(results) == 3 and all(r["status"] == "done" for r in results)
    assert all(len(r["cuda_visible_devices"].split(",")) == 1 for r in results)
