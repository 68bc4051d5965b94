"""Faults injected into a `dlfound` process (and the DDP ranks it starts) by tests/test_runs_survive.py.

Python imports sitecustomize at start-up from PYTHONPATH; the tests put this folder there and describe the fault
in DLFOUND_FAULT (JSON). Without that variable this file does nothing.
  {"enospc_after": N}          os.write fails with ENOSPC once N bytes were written (a disk that fills)
  {"kill_at": ["write", n]}    SIGKILL half-way through the n-th os.write (inside a checkpoint or results write)
  {"kill_at": ["train", n]}    SIGKILL at the n-th training loss (mid-epoch), ["val", n] the n-th validation loss
  {"nan_at": n}                the n-th training loss is NaN
  {"rank": 1, ...}             only in the DDP rank with LOCAL_RANK 1 (SLURM_LOCALID 1 under srun)
  {"array_task": 1, ...}       only in the job of a SLURM sweep (job array) with SLURM_ARRAY_TASK_ID 1
"""

import errno
import json
import os
import signal

FAULT = json.loads(os.environ.get("DLFOUND_FAULT") or "null")


def _die():
    os.kill(os.getpid(), signal.SIGKILL)


def _install(fault):
    if "enospc_after" in fault:
        real_write, budget = os.write, [fault["enospc_after"]]

        def write(fd, data):
            if budget[0] < len(data):
                budget[0] = 0  # a full disk stays full: later small writes fail too
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            budget[0] -= len(data)
            return real_write(fd, data)

        os.write = write
        return
    kind, n = fault.get("kill_at", ("nan", fault.get("nan_at")))
    count = [0]
    if kind == "write":
        real_write = os.write

        def write(fd, data):
            count[0] += 1
            if count[0] == n:
                real_write(fd, bytes(memoryview(data)[: len(data) // 2]))
                _die()
            return real_write(fd, data)

        os.write = write
        return
    import torch
    import torch.nn.functional as F

    real_loss = F.cross_entropy

    def cross_entropy(*args, **kwargs):
        loss = real_loss(*args, **kwargs)
        if (kind == "val") != torch.is_grad_enabled():  # training losses carry gradients, validation ones not
            count[0] += 1
            if count[0] == n:
                if kind == "nan":
                    return loss * float("nan")
                _die()
        return loss

    F.cross_entropy = cross_entropy


LOCAL_RANK = os.environ.get("LOCAL_RANK", os.environ.get("SLURM_LOCALID", "0"))
ARRAY_TASK = os.environ.get("SLURM_ARRAY_TASK_ID", "")
if (
    FAULT
    and str(FAULT.get("rank", LOCAL_RANK)) == LOCAL_RANK
    and str(FAULT.get("array_task", ARRAY_TASK)) == ARRAY_TASK
):
    _install(FAULT)
