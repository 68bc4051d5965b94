"""Runs that survive: a full disk, kills at any moment, NaN mid-epoch, a DDP rank that dies, damaged and foreign
checkpoints, typos in group names, and quiet output (issue 15). Faults are injected into the real `dlfound`
processes by tests/faults/sitecustomize.py; the model is the MLP on the bundled digits (21 batches an epoch)."""

import errno
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import read_results, run_dlfound, run_folders

FAULTS = Path(__file__).parent / "faults"
QUIET = ["print_config=false", "callbacks=none", "logger=none"]
BATCHES_PER_EPOCH = 21


def with_fault(fault: dict) -> dict:
    return {
        "DLFOUND_FAULT": json.dumps(fault),
        "PYTHONPATH": os.pathsep.join([str(FAULTS), os.environ.get("PYTHONPATH", "")]),
    }


def one_paragraph(proc) -> str:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "\x1b" not in proc.stderr, proc.stderr[-3000:]
    return " ".join(proc.stderr.replace("│", " ").split())


def assert_checkpoints_load(folder: Path) -> list[Path]:
    """Every file under a final checkpoint name loads through dlfound's reader."""
    from dlfound.runs.checkpoint import load_checkpoint

    found = sorted((folder / "checkpoints").glob("*.ckpt"))
    for path in found:
        load_checkpoint(path)
    return found


# ---- the writer -------------------------------------------------------------------------------------------------


def test_writer_leaves_the_old_file_and_no_temporary_on_a_full_disk(tmp_path, monkeypatch):
    from dlfound.errors import DiskWriteError
    from dlfound.files import write_bytes

    target = write_bytes(tmp_path / "results.json", b"old")

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(DiskWriteError) as err:
        write_bytes(target, b"x" * 5_000_000)
    message = str(err.value)
    assert "no space is left" in message and str(tmp_path) in message and "free" in message
    assert "4.8 MB" in message  # the size the file needed
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_pictures_go_through_the_writer(tmp_path, monkeypatch):
    import numpy as np

    from dlfound.errors import DiskWriteError
    from dlfound.image_files import write_picture

    monkeypatch.setattr(os, "write", lambda fd, data: (_ for _ in ()).throw(OSError(errno.EROFS, "Read-only")))
    with pytest.raises(DiskWriteError, match="read-only"):
        write_picture(np.zeros((8, 8, 3), np.uint8), tmp_path / "grid.png")
    assert list(tmp_path.iterdir()) == []


# ---- a disk that fills mid-run ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_disk_that_fills_mid_run_ends_in_one_paragraph_and_resumes(workdir, dlfound_in_process):
    """Simulated: os.write refuses once ~2 checkpoints' worth of bytes were written (epoch 1's checkpoints)."""
    proc = run_dlfound(
        ["train", "trainer.max_epochs=3", *QUIET], workdir, check=False, env=with_fault({"enospc_after": 1_500_000})
    )
    text = one_paragraph(proc)
    [folder] = [p for p in (workdir / "outputs" / "train" / "runs").iterdir()]
    assert "no space is left on the device" in text and "free" in text and "needed about 623" in text
    assert f"resume={folder}" in text.replace(" ", "")
    assert "could not be recorded" in text  # results.json met the same full disk, and the user is told
    assert not list(folder.rglob("*.partial-*"))
    [kept] = [p.name for p in assert_checkpoints_load(folder) if p.name == "last.ckpt"]
    dlfound_in_process(["train", f"resume={folder}"], workdir, check=True)  # space is free again
    results = read_results(folder)
    assert results["status"] == "done" and results["epochs"] == 3
    assert results["global_step"] == 3 * BATCHES_PER_EPOCH


def small_filesystem_script(mount: Path, inner: str) -> list[str]:
    """A shell in a private mount namespace (no root needed where user namespaces are allowed) with a 1.5 MB
    tmpfs at `mount`; the disk is grown to 64 MB before `inner`'s second half (after `; grow;`)."""
    script = f"mount -t tmpfs -o size=1500k tmpfs {mount} && " + inner.replace(
        "grow;", f"mount -o remount,size=64m {mount};"
    )
    return ["unshare", "-Urm", "sh", "-c", script]


def can_mount_small_filesystem(workdir: Path) -> bool:
    mount = ["unshare", "-Urm", "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs {workdir}"]
    return bool(shutil.which("unshare")) and subprocess.run(mount).returncode == 0


@pytest.mark.slow
def test_a_real_small_filesystem_fills_mid_run(workdir):
    if not can_mount_small_filesystem(workdir):
        pytest.skip(
            "cannot mount a small tmpfs here (needs user namespaces or root): the simulated full disk above "
            "covers the same path"
        )
    disk = workdir / "disk"
    disk.mkdir()
    env = {**os.environ, "DLFOUND_OUTPUTS": str(disk), "COLUMNS": "200", "PYTHONWARNINGS": "ignore"}
    env.pop("DLFOUND_COMMAND", None)
    py = f"{sys.executable} -m dlfound"
    report = workdir / "report"
    inner = (
        f"{py} train trainer.max_epochs=4 {' '.join(QUIET)} hydra.run.dir={disk}/run 2> {workdir}/err1; "
        f"echo $? > {workdir}/rc1; "
        f'{sys.executable} -c "import pathlib, sys; from dlfound.runs.checkpoint import load_checkpoint; '
        f"[load_checkpoint(p) for p in pathlib.Path('{disk}/run/checkpoints').glob('*.ckpt')]\" "
        f"2> {workdir}/load1; echo $? > {workdir}/loadrc; ls -a {disk}/run/checkpoints > {workdir}/ls1; "
        f"grow; {py} train resume={disk}/run 2> {workdir}/err2; echo $? > {workdir}/rc2; "
        f"cp {disk}/run/results.json {report}"
    )
    subprocess.run(small_filesystem_script(disk, inner), cwd=workdir, env=env, timeout=300)
    err = " ".join((workdir / "err1").read_text().replace("│", " ").split())
    assert (workdir / "rc1").read_text().strip() != "0"
    assert "Traceback" not in err and "no space is left on the device" in err, err[-2000:]
    assert "free" in err and f"resume={disk}/run" in err.replace(" ", "")
    assert (workdir / "loadrc").read_text().strip() == "0", (workdir / "load1").read_text()[-2000:]
    assert ".partial-" not in (workdir / "ls1").read_text()
    assert (workdir / "rc2").read_text().strip() == "0", (workdir / "err2").read_text()[-3000:]
    results = json.loads(report.read_text())
    assert results["status"] == "done" and results["epochs"] == 4


@pytest.mark.slow
def test_a_disk_full_before_the_run_starts_ends_in_one_paragraph(workdir):
    """Hydra writes .hydra/*.yaml before the run starts; on a full disk that is the same one paragraph (where, how
    much is free, what to do) as a disk that fills during training, not Hydra's traceback."""
    if not can_mount_small_filesystem(workdir):
        pytest.skip("cannot mount a small tmpfs here (needs user namespaces or root)")
    disk = workdir / "disk"
    disk.mkdir()
    env = {**os.environ, "DLFOUND_OUTPUTS": str(disk), "COLUMNS": "200", "PYTHONWARNINGS": "ignore"}
    env.pop("DLFOUND_COMMAND", None)
    inner = (
        f"dd if=/dev/zero of={disk}/filler bs=64k 2>/dev/null; "
        f"{sys.executable} -m dlfound train {' '.join(QUIET)} 2> {workdir}/err; echo $? > {workdir}/rc"
    )
    subprocess.run(small_filesystem_script(disk, inner), cwd=workdir, env=env, timeout=120)
    err = " ".join((workdir / "err").read_text().replace("│", " ").split())
    assert (workdir / "rc").read_text().strip() != "0"
    assert "Traceback" not in err and "no space is left on the device" in err and "free" in err, err[-2000:]
    assert "has not started" in err and "run the same command again" in err, err[-2000:]


# ---- SIGKILL at random moments ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_finishes_with_loadable_checkpoints(workdir, dlfound_in_process):
    """Three kills at seeded moments (a training batch, a validation batch, half-way through a file write), each
    followed by a resume; the run must end with the right epoch and step counts and only loadable checkpoints."""
    epochs = 4
    rng = random.Random(15)
    folder = workdir / "outputs" / "run"
    moments = [("write", rng.randint(1, 4)), ("train", rng.randint(1, 40)), ("val", rng.randint(1, 6))]
    args = ["train", f"trainer.max_epochs={epochs}", "print_config=false", f"hydra.run.dir={folder}", "resume=auto"]
    for moment in moments:
        proc = run_dlfound(args, workdir, check=False, env=with_fault({"kill_at": list(moment)}))
        assert proc.returncode == -9, (moment, proc.stderr[-2000:])
        assert_checkpoints_load(folder)
    dlfound_in_process(args, workdir, check=True)
    results = read_results(folder)
    assert results["status"] == "done" and results["epochs"] == epochs
    assert results["global_step"] == epochs * BATCHES_PER_EPOCH
    assert {p.name for p in assert_checkpoints_load(folder)} >= {"last.ckpt"}
    assert not list(folder.rglob("*.partial-*"))


# ---- NaN mid-epoch, a DDP rank that dies ------------------------------------------------------------------------


@pytest.mark.slow
def test_nan_in_the_middle_of_an_epoch_stops_with_a_paragraph_and_a_good_checkpoint(workdir):
    proc = run_dlfound(
        ["train", "trainer.max_epochs=3", *QUIET],
        workdir,
        check=False,
        env=with_fault({"nan_at": BATCHES_PER_EPOCH + 10}),
    )
    text = one_paragraph(proc)
    assert "training loss became nan at epoch 1" in text
    [folder] = list((workdir / "outputs" / "train" / "runs").iterdir())
    results = read_results(folder)
    assert results["status"] == "failed" and results["last_checkpoint"].endswith("last.ckpt")
    ckpt = torch.load(results["last_checkpoint"], weights_only=True)
    assert ckpt["epoch"] == 0 and all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())


@pytest.mark.slow
def test_a_ddp_rank_that_dies_ends_the_run_and_it_resumes(workdir):
    """Rank 1 is killed mid-epoch 2. Lightning's watchdog then kills rank 0 too (SIGKILL), after dlfound's watcher
    recorded the failure and printed one paragraph naming the rank and the way back; the checkpoints all load, and
    `resume=` finishes the run with the right epoch count."""
    args = ["trainer=ddp_cpu", "trainer.max_epochs=3", *QUIET]
    proc = run_dlfound(
        ["train", *args], workdir, check=False, env=with_fault({"rank": 1, "kill_at": ["train", 15]}), timeout=120
    )
    assert proc.returncode != 0
    [folder] = list((workdir / "outputs" / "train" / "runs").iterdir())
    text = " ".join(proc.stderr.replace("│", " ").split())
    assert "rank 1" in text and "killed by SIGKILL" in text and f"resume={folder}" in text.replace(" ", ""), text
    failed = read_results(folder)
    assert failed["status"] == "failed" and "rank 1" in failed["error"], failed
    assert "last.ckpt" in [p.name for p in assert_checkpoints_load(folder)]
    run_dlfound(["train", f"resume={folder}"], workdir, timeout=120)
    results = read_results(folder)
    assert results["status"] == "done" and results["epochs"] == 3 and results["world_size"] == 2


# ---- checkpoints: one reader ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("good")
    run_dlfound(["train", "trainer.max_epochs=1", *QUIET], cwd)
    [folder] = run_folders(cwd / "outputs")
    return folder / "checkpoints" / "last.ckpt"


def damaged(good: Path, tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, words its refusal must hold)."""

    class Code:
        def __reduce__(self):
            return (print, ("this ran",))

    files = {}
    data = good.read_bytes()
    (tmp / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    files["truncated"] = (tmp / "truncated.ckpt", "damaged or incomplete")
    (tmp / "text.ckpt").write_text("hello")
    files["foreign"] = (tmp / "text.ckpt", "not a PyTorch checkpoint")
    torch.save({"state_dict": {"w": torch.ones(2)}}, tmp / "lightning.ckpt")
    files["not ours"] = (tmp / "lightning.ckpt", "not a dlfound checkpoint")
    torch.save({"x": Code()}, tmp / "code.ckpt")
    files["code"] = (tmp / "code.ckpt", "carries Python objects")
    newer = torch.load(good, weights_only=True)
    newer["dlfound_format"] = 99
    torch.save(newer, tmp / "newer.ckpt")
    files["newer"] = (tmp / "newer.ckpt", "newer dlfound")
    return files


@pytest.mark.slow
def test_every_checkpoint_refusal_is_a_paragraph(good_checkpoint, tmp_path):
    from dlfound.errors import CheckpointError
    from dlfound.runs.checkpoint import FORMAT, load_checkpoint

    assert load_checkpoint(good_checkpoint)["dlfound_format"] == FORMAT
    for name, (path, words) in damaged(good_checkpoint, tmp_path).items():
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(path)
        assert words in str(err.value) and "\x1b" not in str(err.value), name


@pytest.mark.parametrize("command", ["train", "eval", "sample", "generate", "restore", "predict", "fid"])
def test_every_command_refuses_a_bad_checkpoint_in_one_paragraph(
    good_checkpoint, tmp_path, dlfound_in_process, command
):
    import numpy as np

    from dlfound.image_files import write_picture

    files = damaged(good_checkpoint, tmp_path)
    image = write_picture(np.zeros((16, 16), np.uint8), tmp_path / "in.png")
    cases = {
        "train": ("truncated",),
        "eval": ("code",),
        "sample": ("foreign",),
        "generate": ("truncated",),
        "restore": ("not ours",),
        "predict": ("newer",),
        "fid": ("code",),
    }[command]
    for case in cases:
        path, words = files[case]
        args = {
            "train": ["train", f"ckpt_path={path}", *QUIET],
            "fid": ["train", "task=gan", "data=digits", "model=dcgan", f"task.fid_features={path}", *QUIET],
            "restore": ["restore", f"ckpt_path={path}", f"input={image}", f"output={tmp_path}/out.png"],
            "predict": ["predict", f"ckpt_path={path}", f"input={path}"],
        }.get(command, [command, f"ckpt_path={path}"])
        proc = dlfound_in_process(args, tmp_path)
        text = one_paragraph(proc)
        assert words in text, (command, case, text[-1500:])
        assert "this ran" not in proc.stdout


def test_legacy_checkpoints_without_a_format_still_load(good_checkpoint, tmp_path):
    from dlfound.runs.checkpoint import load_checkpoint

    old = torch.load(good_checkpoint, weights_only=True)
    old.pop("dlfound_format")
    torch.save(old, tmp_path / "old.ckpt")
    assert "state_dict" in load_checkpoint(tmp_path / "old.ckpt")


# ---- typos and output ------------------------------------------------------------------------------------------


def test_an_unknown_group_option_names_the_closest_first(workdir, dlfound_in_process):
    proc = dlfound_in_process(["train", "model=resnt18"], workdir)
    text = one_paragraph(proc)
    assert "resnet18" in text and text.index("resnet18") < text.index("dlfound list model")
    assert "vgg19_bn" not in text and "Config search path" not in text


@pytest.mark.slow
def test_output_is_quiet_and_tensorboard_holds_the_choices(workdir):
    # A process of its own: Lightning's messages go to the stderr of the moment it was first imported.
    proc = run_dlfound(
        ["train", "trainer.max_epochs=1", "print_config=false", "name=lr_small", "optim.lr=0.003"], workdir
    )
    out = proc.stdout + proc.stderr
    assert "litlogger" not in out and "Tip" not in out and "already configured" not in out
    [folder] = run_folders(workdir / "outputs")
    assert folder.name == "lr_small"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder / "tensorboard"))
    acc.Reload()
    start = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    assert b"optim.lr" in start and b"model" in start and b"seed" in start
    assert b"hydra" not in start
