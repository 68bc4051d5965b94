"""Checking image files before training, so that a corrupt file ends in one clear message up front rather than
a PIL traceback mid-epoch.

Each file's header is parsed and verified by PIL (PNG chunks and their checksums); a JPEG must also end in its
end-of-image marker, which catches the usual damage, a copy cut short. Files are checked in parallel by a thread
pool (the work is file reads and C code). Verdicts are cached by (size, modification time) in one small JSON
file per folder under the user's cache directory ($XDG_CACHE_HOME/dlfound/image-checks, else
~/.cache/dlfound/image-checks): data folders are often read-only or shared between users, so the cache is not
written next to the data; a file that changes is checked again, and a second run over the same folder opens none.
"""

import hashlib
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dlfound.errors import DatasetUnavailableError
from dlfound.files import user_cache_dir

SHOWN = 5  # bad files named in the message; the rest are counted
JPEG_END = b"\xff\xd9"


class BadImagesSkipped(UserWarning):
    """Corrupt images were left out of a data set (data.skip_bad_files=true)."""


def cache_file(folder: Path) -> Path:
    base = user_cache_dir("image-checks")
    key = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:16]
    return base / f"{key}.json"


def problem_with(path: Path) -> str | None:
    """None for a readable image, else what is wrong with it."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            kind = image.format
            image.verify()
        if kind == "JPEG":
            with open(path, "rb") as f:
                f.seek(max(0, path.stat().st_size - 64))
                if JPEG_END not in f.read():
                    return "truncated JPEG (no end-of-image marker)"
    except Exception as err:  # PIL raises many kinds for damaged files
        return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'unreadable'}"
    return None


def _load_cache(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _save_cache(path: Path, verdicts: dict) -> None:
    """Best effort: a cache that cannot be written only costs the next run the same check."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(verdicts))
        os.replace(tmp, path)
    except OSError:
        pass


def find_bad_images(files: list[Path], folder: Path) -> dict[Path, str]:
    """{file: problem} for the unreadable files among `files` (all under `folder`), using and updating the cache."""
    cache_path = cache_file(folder)
    cached = _load_cache(cache_path)
    verdicts, todo = {}, []
    for path in files:
        key = str(path.relative_to(folder))
        stat = path.stat()
        stamp = [stat.st_size, stat.st_mtime_ns]
        entry = cached.get(key)
        if entry and entry[:2] == stamp:
            verdicts[key] = entry
        else:
            todo.append((key, path, stamp))
    if todo:
        with ThreadPoolExecutor(max_workers=min(32, 4 * (os.cpu_count() or 1))) as pool:
            for (key, _, stamp), problem in zip(todo, pool.map(problem_with, [p for _, p, _ in todo]), strict=True):
                verdicts[key] = [*stamp, problem]
        _save_cache(cache_path, {**cached, **verdicts})
    return {folder / key: entry[2] for key, entry in verdicts.items() if entry[2]}


def good_images(files: list[Path], folder: Path, skip_bad: bool) -> list[Path]:
    """`files` when all are readable images; otherwise one DatasetUnavailableError naming the first few bad ones
    and their count, or (skip_bad) the good ones with a warning."""
    bad = find_bad_images(files, folder)
    if not bad:
        return files
    listed = "; ".join(f"{path} ({problem})" for path, problem in sorted(bad.items())[:SHOWN])
    more = f" and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
    what = f"{len(bad)} of the {len(files)} images under {folder.resolve()} cannot be read: {listed}{more}."
    if skip_bad:
        warnings.warn(f"{what} They are left out (data.skip_bad_files=true).", BadImagesSkipped, stacklevel=2)
        return [f for f in files if f not in bad]
    raise DatasetUnavailableError(f"{what} Replace or delete them, or leave them out with data.skip_bad_files=true.")
