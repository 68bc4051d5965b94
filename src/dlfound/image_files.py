"""Reading and writing image files: the one place dlfound opens or saves a PNG, JPEG, BMP or TIFF.

Data modules read training and test images with `read_image` (uint8 [C, H, W]); `dlfound restore` reads its
inputs the same way and writes tensors with `write_image`; pictures drawn for TensorBoard and run folders
(uint8 [H, W, 3] arrays) are saved with `write_picture`.
"""

from pathlib import Path

import numpy as np
import torch

from dlfound.errors import DlfoundError
from dlfound.files import write_bytes

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
GRAY_MODES = ("L", "I", "I;16", "1", "LA")
CHANNELS = ("auto", "gray", "rgb", "y")


def read_image(path: str | Path, channels: str = "auto") -> torch.Tensor:
    """uint8 [C, H, W]. auto: one channel for gray files, three otherwise; gray: PIL's luminance; rgb: three
    channels (gray images replicated); y: BT.601 luma rounded to 8 bits as MATLAB's rgb2ycbcr (a gray image is
    taken as its own luma)."""
    from PIL import Image

    from dlfound.ops.colour import quantize, rgb_to_y

    path = Path(path)
    if not path.is_file():
        raise DlfoundError(f"{path}: no such file. Give the path of a {', '.join(IMAGE_SUFFIXES)} image.")
    try:
        with Image.open(path) as image:
            gray = image.mode in GRAY_MODES
            mode = "L" if channels == "gray" or (channels in ("y", "auto") and gray) else "RGB"
            array = np.asarray(image.convert(mode))
    except (OSError, ValueError) as err:
        raise DlfoundError(f"could not read image {path}: {err}") from None
    x = torch.from_numpy(array.copy())
    x = x[None] if x.dim() == 2 else x.permute(2, 0, 1)
    if channels == "y" and x.shape[0] == 3:
        x = quantize(rgb_to_y(x.double() / 255)).mul(255).round().to(torch.uint8)
    return x.contiguous()


def check_suffix(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise DlfoundError(f"{path}: give a file name ending in .png (or {', '.join(IMAGE_SUFFIXES[1:])})")
    return path


def write_picture(picture: np.ndarray, path: str | Path) -> Path:
    """Save a uint8 [H, W] or [H, W, C] array, atomically (dlfound.files); the folder is created. Returns the
    path."""
    import io

    from PIL import Image

    path = check_suffix(path)
    encoded = io.BytesIO()
    image = Image.fromarray(picture[..., 0] if picture.ndim == 3 and picture.shape[-1] == 1 else picture)
    image.save(encoded, format=Image.registered_extensions()[path.suffix.lower()])
    return write_bytes(path, encoded.getvalue())


def write_image(x: torch.Tensor, path: str | Path) -> Path:
    """Save one image [C, H, W] or [1, C, H, W] with values in [0, 1], rounded to 8 bits."""
    x = x[0] if x.dim() == 4 else x
    return write_picture(x.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy(), path)
