"""How the Trainer writes checkpoints: stamped with dlfound's checkpoint format, all or nothing.

Lightning's own writer streams into the final file name, so a full disk or a kill mid-write leaves a truncated
`best-epoch003.ckpt` that `resume` and `eval` would later pick up. This one serialises the checkpoint in memory
and hands the bytes to dlfound.files.write_bytes (temporary file, fsync, rename).
"""

import io

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from dlfound import __version__
from dlfound.files import write_bytes
from dlfound.runs.checkpoint import FORMAT, FORMAT_KEY, VERSION_KEY


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        import torch

        checkpoint[FORMAT_KEY] = FORMAT
        checkpoint[VERSION_KEY] = __version__
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_bytes(path, buffer.getbuffer())
