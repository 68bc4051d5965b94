"""A run that meets a full, read-only or forbidden disk: one paragraph that says where, how much is free, about
how much a checkpoint needs, and how to continue from the last good checkpoint once space is freed.

Every file dlfound writes itself goes through dlfound.files (never half-written); TensorBoard's and the CSV
logger's writes raise plain OSErrors, which are recognised here from anywhere in the exception's chain. Before a
run starts, Hydra writes `.hydra/*.yaml` into its folder, and would answer a full disk with a traceback:
check_room_to_start tries a write of that size first.
"""

import os
from pathlib import Path

from dlfound.errors import DiskWriteError
from dlfound.files import disk_error, human_size, is_disk_error
from dlfound.runs.results import last_checkpoint

# What Hydra writes into a run folder before the run starts (.hydra/config.yaml, hydra.yaml, overrides.yaml: tens of
# kilobytes), with room to spare.
HYDRA_WRITES_BYTES = 256 * 1024


def find_disk_error(err: BaseException) -> BaseException | None:
    """The DiskWriteError or disk OSError behind err (raised, or met while Lightning handled it), if any."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, DiskWriteError) or is_disk_error(err):
            return err
        err = err.__cause__ or err.__context__
    return None


def checkpoint_size(run_dir: Path) -> int | None:
    sizes = [p.stat().st_size for p in (Path(run_dir) / "checkpoints").glob("*.ckpt")]
    return max(sizes) if sizes else None


def disk_failure(err: BaseException, run_dir: Path, multirun: bool) -> DiskWriteError | None:
    """One paragraph for a run stopped by its disk, or None when err is not about the disk."""
    found = find_disk_error(err)
    if found is None:
        return None
    size = checkpoint_size(run_dir)
    if isinstance(found, DiskWriteError):
        message = str(found)
    else:
        message = str(disk_error(found, found.filename or run_dir, atomic=False))
    if size and "needed about" not in message:
        message += f" A checkpoint of this run takes about {human_size(size)}."
    last = last_checkpoint(run_dir)
    how = (
        f"re-run the same sweep command with hydra.sweep.dir={Path(run_dir).parent} resume=auto"
        if multirun
        else f"dlfound train resume={run_dir}"
    )
    if last:
        message += f" The run can continue from its last good checkpoint ({last.name}) once space is freed: {how}."
    else:
        message += f" No checkpoint was saved yet; once space is freed, run it again ({how})."
    return DiskWriteError(message)


def check_room_to_start(folder: Path) -> None:
    """Write and remove a file of HYDRA_WRITES_BYTES in folder (or its nearest existing parent); a disk error is
    the one paragraph a run stopped by its disk ends in."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    probe = folder / f".dlfound-room-{os.getpid()}"
    try:
        with open(probe, "wb") as file:
            file.write(bytes(HYDRA_WRITES_BYTES))
            file.flush()
            os.fsync(file.fileno())
    except OSError as err:
        if not is_disk_error(err):
            raise
        message = str(disk_error(err, folder, HYDRA_WRITES_BYTES, atomic=False)).removesuffix(
            " Free some space, or write elsewhere, and try again."
        )
        raise DiskWriteError(
            f"{message} The run has not started: its configuration (about {human_size(HYDRA_WRITES_BYTES)} with "
            f"room to spare) could not be written. Once space is freed (or with DLFOUND_OUTPUTS or hydra.run.dir "
            "on another disk), run the same command again."
        ) from None
    finally:
        probe.unlink(missing_ok=True)
