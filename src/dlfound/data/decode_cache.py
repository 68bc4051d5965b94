"""Decoded image folders kept on disk: a small image folder (CIFAR-10 as JPEG, a few thousand photos) is decoded
once into uint8 tensors, and later runs read those instead of decoding every file again.

The tensors live in the user's cache directory (dlfound.files.user_cache_dir("decoded-images")), never beside the
data (often read-only or shared), under a key made of every file's path, size, modification time and label and
of the decoding settings (channels, image size): a file that changes, appears or goes makes a new key, so a stale
cache is never read. The file is written whole and renamed into place, so concurrent runs each see a complete file
or none; a cache that cannot be written (a full disk, a read-only home) costs only the time, with a warning.
"""

import hashlib
import io
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from dlfound.errors import DlfoundError
from dlfound.files import user_cache_dir, write_bytes


class DecodeCacheNotWritten(UserWarning):
    """The decoded images could not be cached; the run goes on with them in memory."""


def cache_path(samples: list[tuple[Path, int]], in_channels: int, image_size: int | None) -> Path:
    """Where the decoded tensors of `samples` ((file, label) pairs, in order) are cached."""
    import dlfound

    digest = hashlib.sha256(f"{dlfound.__version__}|{in_channels}|{image_size}".encode())
    for path, label in samples:
        stat = os.stat(path)
        # abspath, not resolve: no system call per file (60,000 of them for CIFAR-10)
        digest.update(f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}|{label}\n".encode())
    return user_cache_dir("decoded-images") / f"{digest.hexdigest()[:32]}.pt"


def read_cached(path: Path) -> tuple[torch.Tensor, torch.Tensor] | None:
    try:
        found = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return found["x"], found["y"]
    except (OSError, RuntimeError, ValueError, KeyError, TypeError, EOFError):  # absent, or not a cache we wrote
        return None


def write_cached(path: Path, x: torch.Tensor, y: torch.Tensor) -> None:
    buffer = io.BytesIO()
    torch.save({"x": x, "y": y}, buffer)
    try:
        write_bytes(path, buffer.getbuffer())
    except (OSError, DlfoundError) as err:
        warnings.warn(
            f"the decoded images were not cached ({err}); this run keeps them in memory, and the next one decodes "
            "the files again.",
            DecodeCacheNotWritten,
            stacklevel=2,
        )


def decoded(
    samples: list[tuple[Path, int]],
    in_channels: int,
    image_size: int | None,
    decode: Callable[[], tuple[torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) of `samples`: from the cache when it holds them, else `decode()`d and cached."""
    path = cache_path(samples, in_channels, image_size)
    found = read_cached(path)
    if found is not None and len(found[1]) == len(samples):
        return found
    x, y = decode()
    write_cached(path, x, y)
    return x, y
