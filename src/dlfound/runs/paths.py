"""Where dlfound finds its config tree, in an installed wheel and in a source checkout alike."""

from pathlib import Path


def config_dir() -> Path:
    """The packaged `dlfound/configs`, or the repository's `configs/` for an editable install."""
    package = Path(__file__).resolve().parents[1]  # src/dlfound
    packaged = package / "configs"
    if (packaged / "train.yaml").is_file():
        return packaged
    in_checkout = package.parents[1] / "configs"
    if (in_checkout / "train.yaml").is_file():
        return in_checkout
    raise FileNotFoundError(f"dlfound's config tree is missing: looked in {packaged} and {in_checkout}")
