"""Which GPUs this machine shows, and a share of them held for one sweep job at a time.

Jobs that a parallel launcher runs side by side must not land on the same GPU. Each job takes a lock file per
GPU before it starts and holds it until it ends; the kernel drops the lock when the holder exits, even by
SIGKILL, so a crashed job never strands a GPU. Locks are per machine and user, so two sweeps share the GPUs too.
"""

import fcntl
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from dlfound.errors import ConfigError


def visible_gpus() -> list[str]:
    """GPU ids as CUDA_VISIBLE_DEVICES names them (indices or UUIDs), or 0..n-1 when it is unset."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        ids = [g.strip() for g in listed.split(",") if g.strip()]
        # CUDA stops reading the list at the first invalid entry; -1 is the usual way to hide every GPU.
        return ids[: ids.index("-1")] if "-1" in ids else ids
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def gpu_count() -> int:
    """The `${dlfound.gpu_count:}` resolver behind `hydra/launcher=gpus`: one parallel job per GPU."""
    count = len(visible_gpus())
    if count == 0:
        raise ConfigError(
            "hydra/launcher=gpus runs one job per GPU, but this machine shows no GPU "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}). On CPU, run jobs "
            "side by side with hydra/launcher=parallel hydra.launcher.n_jobs=N."
        )
    return count


def register_resolver() -> None:
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("dlfound.gpu_count"):
        OmegaConf.register_new_resolver("dlfound.gpu_count", gpu_count)


def lock_folder() -> Path:
    folder = Path(tempfile.gettempdir()) / f"dlfound-gpu-locks-{os.getuid()}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def hold_gpus(needed: int, gpus: list[str] | None = None, poll_s: float = 1.0):
    """Wait until `needed` of the GPUs are free, hold them for the block, and yield their ids."""
    gpus = visible_gpus() if gpus is None else gpus
    if needed > len(gpus):
        raise ConfigError(
            f"the job asks for {needed} GPU(s) (trainer.devices) but this machine shows {len(gpus)}: "
            f"{', '.join(gpus) or 'none'}. Lower trainer.devices."
        )
    folder = lock_folder()
    while True:
        held = {}
        for gpu in gpus:
            handle = open(folder / f"gpu-{gpu}.lock", "w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            held[gpu] = handle
            if len(held) == needed:
                break
        if len(held) == needed:
            break
        for handle in held.values():
            handle.close()
        time.sleep(poll_s)
    try:
        yield list(held)
    finally:
        for handle in held.values():
            handle.close()


NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


def drop_nvml_cuda_check() -> bool:
    """On a machine without a GPU, let torch ask the CUDA runtime whether one is there, not NVML; whether it did.

    Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1 on import, so that asking does not initialise CUDA before
    DataLoader workers fork. torch keeps the NVML answer only once CUDA is initialised, which never happens on a
    CPU-only machine, so every `torch.cuda.is_available()` tries to open libnvidia-ml again, and torch.optim asks
    at every optimizer step: 160 us a step on the development machine, a fifth of a small model's whole step.
    Without a GPU there is nothing to initialise and no fork to poison, and the runtime's answer costs 4 us."""
    import torch

    if os.environ.get(NVML_CHECK) == "1" and torch.cuda.device_count() == 0:
        del os.environ[NVML_CHECK]
        return True
    return False


@contextmanager
def runtime_cuda_check_without_a_gpu():
    """drop_nvml_cuda_check for the length of a run; the environment as it was afterwards (a notebook's)."""
    dropped = drop_nvml_cuda_check()
    try:
        yield
    finally:
        if dropped:
            os.environ[NVML_CHECK] = "1"
