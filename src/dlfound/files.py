"""The one way dlfound writes a file: all of it under its final name, or none of it.

Every file a run leaves (checkpoints, results.json, pictures, the config) is written to a hidden temporary file
in the same folder, flushed and fsynced, then renamed over the final name; a rename within a folder is atomic,
so a reader, a resumed run or a crash never meets half a file. When the write fails (a full disk, a read-only
or forbidden folder) the temporary file is removed and the error becomes one paragraph (DiskWriteError) that
says where, how much space is free, how much the file needed, and what to do.

Only the standard library here: every layer may use it.
"""

import contextlib
import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlfound.errors import DiskWriteError

# OS errors a user fixes by freeing space or choosing another folder, and how to say them.
DISK_ERRORS = {
    errno.ENOSPC: "no space is left on the device",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission to write there is denied",
    errno.EPERM: "permission to write there is denied",
    errno.EFBIG: "the file is too large for the file system",
}
# Temporary files are hidden and end in this plus the writer's pid (`.last.ckpt.partial-123`), so that no glob for
# *.ckpt or results.json ever picks one up.
TEMP_SUFFIX = ".partial-"


def user_cache_dir(name: str) -> Path:
    """dlfound's folder NAME in the user's cache directory ($XDG_CACHE_HOME/dlfound/NAME, else
    ~/.cache/dlfound/NAME): what can be rebuilt from the data or the code, kept out of data folders (often
    read-only or shared). Not created here."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dlfound" / name


def contents_key(folders: list[tuple[Path, str]], *facts: str) -> str:
    """A short hash of the files matching each (folder, glob pattern), by relative path and content, and of
    `facts` (versions and the like): the key of a cache of what is computed from them."""
    import hashlib

    digest = hashlib.sha256("\0".join(facts).encode())
    for root, pattern in folders:
        for path in sorted(Path(root).rglob(pattern)):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:24]


def cached_json(folder: str, key: str, compute: Callable[[], Any]) -> Any:
    """compute()'s value (JSON-able), kept in the user's cache folder FOLDER under `key`: read when there, else
    computed and written atomically. A damaged file is computed again; a cache that cannot be written (a full disk,
    a read-only home) costs the next call only the time."""
    import json

    path = user_cache_dir(folder) / f"{key}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    value = compute()
    with contextlib.suppress(OSError, DiskWriteError):
        write_text(path, json.dumps(value))
    return value


def human_size(n: float | None) -> str:
    if n is None:
        return "unknown"
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024


def free_space(folder: Path) -> int | None:
    """Bytes free in the file system that holds folder (or its nearest existing parent)."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def disk_error(err: OSError, path: Path | str, needed: int | None = None, atomic: bool = True) -> DiskWriteError:
    """One paragraph for an OSError met while writing path (a file, or a folder when the file is unknown): what
    happened, the free space, the size needed. `atomic`: the file was written through write_bytes."""
    path = Path(path)
    folder, name = (path, "files") if path.is_dir() else (path.parent, path.name)
    why = DISK_ERRORS.get(err.errno, err.strerror or str(err))
    need = f"; the file needed about {human_size(needed)}" if needed and atomic else ""
    kept = " Nothing was written under that name." if atomic else ""
    return DiskWriteError(
        f"could not write {name} into {folder}: {why} ({human_size(free_space(folder))} free"
        f"{need}).{kept} Free some space, or write elsewhere, and try again."
    )


def is_disk_error(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in DISK_ERRORS


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write data to path atomically (temporary file in the same folder, fsync, rename); the folder is created.
    On failure nothing is left under either name, and a disk error is raised as DiskWriteError."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise (disk_error(err, path, len(data)) if is_disk_error(err) else err) from None
    tmp = path.with_name(f".{path.name}{TEMP_SUFFIX}{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as err:  # KeyboardInterrupt too: never leave the temporary file behind
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError) and is_disk_error(err):
            raise disk_error(err, path, len(data)) from None
        raise
    return path


def fresh_output_path(path: str | Path) -> tuple[Path, str | None]:
    """Where a command writes the output the user named: `path` when no file is there, else the first free numbered
    name beside it (samples.png -> samples-1.png), with the line that says so. A command never overwrites a file it
    did not write in this call: the samples or predictions of an earlier call may be all that is left of them."""
    path = Path(path)
    if not path.exists():
        return path, None
    n = 1
    while (numbered := path.with_name(f"{path.stem}-{n}{path.suffix}")).exists():
        n += 1
    return numbered, f"{path} exists and is kept; writing {numbered} instead"


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def remove_partial_files(folder: str | Path) -> None:
    """Delete temporary files that a killed process left in folder (a crash between write and rename)."""
    for stale in Path(folder).glob(f".*{TEMP_SUFFIX}*"):
        pid = stale.name.rsplit(TEMP_SUFFIX, 1)[1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            stale.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
