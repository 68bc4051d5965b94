"""Errors a user can cause. The CLI prints them as one paragraph and exits non-zero, never as a traceback."""


class DlfoundError(Exception):
    """A mistake in input, config or environment that the user can fix; the message says how. `exit_code` is the
    CLI's for it (128 + the signal's number for a run stopped by one)."""

    exit_code = 2


class DatasetUnavailableError(DlfoundError):
    """A dataset is missing or unreadable and could not be downloaded."""


class ConfigError(DlfoundError):
    """A config value or combination that cannot work."""


class NonFiniteLossError(DlfoundError):
    """The training loss became NaN or infinite."""


class DiskWriteError(DlfoundError):
    """A file could not be written: the disk is full, read-only, or the folder is not ours to write."""


class CheckpointError(DlfoundError):
    """A checkpoint file that dlfound cannot or will not load: missing, damaged, foreign, newer, or carrying code."""
