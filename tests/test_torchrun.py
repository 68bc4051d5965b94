"""torchrun across two "nodes": two `torchrun --nnodes 2 --nproc-per-node 1` processes on this host, meeting through
a c10d rendezvous on 127.0.0.1, train one run (gloo on the CPU) into one folder; a node killed mid-run ends the run
with one paragraph, and the same two commands with `resume=RUN` finish it.

Two processes on one host exercise the rendezvous, the rank and world-size wiring, one shared run folder and
resuming; not a network between hosts, nor storage that two hosts share (docs/clusters.md).
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import read_results

pytestmark = pytest.mark.slow

QUIET = ["print_config=false", "callbacks=none", "logger=none"]
BATCHES_PER_RANK = 11  # each of the two ranks takes half of the digits set's 21 training batches an epoch


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def process_tree(pid: int) -> list[int]:
    """pid and every process below it (torchrun starts each rank in a session of its own)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        for child in (task / "children").read_text().split():
            found += process_tree(int(child))
    return found


def start_nodes(workdir: Path, args: list[str]) -> list[subprocess.Popen]:
    """Two torchrun "nodes" on this host."""
    port = free_port()
    env = {**os.environ, "DLFOUND_DATA": str(workdir / "data"), "COLUMNS": "200", "PYTHONWARNINGS": "ignore"}
    env.pop("DLFOUND_COMMAND", None)
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1"]
    command += ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", str(port)]
    command += ["-m", "dlfound", "train", *args]
    return [
        subprocess.Popen(
            command,
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]


def test_two_torchrun_nodes_train_one_run_a_killed_node_ends_it_in_a_paragraph_and_resume_finishes(workdir):
    from dlfound.runs.checkpoint import load_checkpoint

    folder, epochs = workdir / "run", 4
    args = ["trainer=ddp_cpu", "trainer.devices=1", "trainer.num_nodes=2", f"trainer.max_epochs={epochs}", *QUIET]
    nodes = start_nodes(workdir, [*args, f"hydra.run.dir={folder}"])
    deadline = time.time() + 240
    while not (folder / "checkpoints" / "last.ckpt").exists():
        assert time.time() < deadline and all(n.poll() is None for n in nodes), [n.poll() for n in nodes]
        time.sleep(0.2)
    for pid in process_tree(nodes[1].pid):  # a host lost: its torchrun and its rank
        os.kill(pid, signal.SIGKILL)
    survivor, _ = nodes[0].communicate(timeout=180)
    nodes[1].wait()
    text = " ".join(survivor.replace("│", " ").split())
    assert nodes[0].returncode != 0
    assert "lost its peers" in text and f"resume={folder}" in text.replace(" ", ""), text[-3000:]
    failed = read_results(folder)
    assert failed["status"] == "failed" and "lost its peers" in failed["error"], failed

    nodes = start_nodes(workdir, [f"resume={folder}"])
    outputs = [n.communicate(timeout=300)[0] for n in nodes]
    assert [n.returncode for n in nodes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    results = read_results(folder)
    assert results["status"] == "done" and results["world_size"] == 2, results
    assert results["epochs"] == epochs and results["global_step"] == epochs * BATCHES_PER_RANK, results
    names = sorted(p.name for p in (folder / "checkpoints").glob("*.ckpt"))
    assert [n for n in names if n.startswith("last")] == ["last.ckpt"], names
    for name in names:
        load_checkpoint(folder / "checkpoints" / name)
