"""Which data sets have their files on this machine: the "here" column of `dlfound list data`, and what an offline
error suggests instead of a set that is missing (data=cifar10 without its files, but DATA/cifar10-jpeg present).

A data config is read with its own defaults (data/_in_memory, data/imagefolder, ...) and `paths.data_dir` only, not
composed into a whole run's config by Hydra: one config in milliseconds, so an error can afford to look at them all.
"""

from pathlib import Path

from omegaconf import DictConfig, OmegaConf


def data_options() -> list[str]:
    """The names a user gives as data=NAME (the config files of the data group, less the `_` bases)."""
    from dlfound.runs.paths import config_dir

    return sorted(p.stem for p in (config_dir() / "data").glob("*.yaml") if not p.name.startswith("_"))


def _data_node(name: str) -> DictConfig:
    """data/NAME.yaml merged over the data configs its defaults list (overrides of other groups left out)."""
    from dlfound.runs.paths import config_dir

    own = OmegaConf.load(config_dir() / "data" / f"{name}.yaml")
    defaults = own.pop("defaults", None) or ["_self_"]
    merged = OmegaConf.create()
    for entry in defaults:
        if entry == "_self_":
            merged = OmegaConf.merge(merged, own)
        elif isinstance(entry, str):  # another data config, e.g. cifar10_jpeg over imagefolder
            merged = OmegaConf.merge(merged, _data_node(entry))
    if "_self_" not in defaults:
        merged = OmegaConf.merge(merged, own)
    return merged


def data_config(name: str, data_dir: str | None = None) -> DictConfig:
    """The data config NAME with `paths.data_dir` resolved (the given folder, else the default: DLFOUND_DATA or
    ~/.cache/dlfound/data). Keys that refer to other groups (task.normalize_inputs) take their defaults."""
    from dlfound.runs.paths import config_dir

    paths = OmegaConf.load(config_dir() / "paths" / "default.yaml")
    if data_dir is not None:
        paths.data_dir = data_dir
    whole = OmegaConf.create({"paths": {"data_dir": paths.data_dir}, "data": _data_node(name)})
    return whole.data


def files_present(cfg: DictConfig) -> tuple[bool | None, str]:
    """(whether the data config's files are here, where it reads them); None for generated or bundled sets."""
    from dlfound.data.layouts import LAYOUTS, torchvision_files_present

    name = cfg.get("name")
    if name in LAYOUTS:
        return torchvision_files_present(name, cfg.data_dir), str(cfg.data_dir)
    if "root" in cfg:
        return Path(cfg.root).is_dir(), str(cfg.root)
    if "path" in cfg.keys():  # `in` alone is False for a path left ??? (the user must give one)
        if OmegaConf.is_missing(cfg, "path"):
            return False, "data.path=FILE"
        return Path(cfg.path).is_file(), str(cfg.path)
    return None, "generated / bundled"


def shape_of(cfg: DictConfig) -> tuple:
    return tuple(cfg.get(key) for key in ("in_channels", "image_size", "num_classes", "strip_width", "block_size"))


def closeness(cfg: DictConfig, wanted: DictConfig | None) -> int:
    """0: shaped as `wanted` (channels, size, classes); 1: images as `wanted` is; 2: another kind of data."""
    if wanted is None:
        return 2
    if shape_of(cfg) == shape_of(wanted):
        return 0
    is_images = [c.get("image_size") is not None and c.get("strip_width") is None for c in (cfg, wanted)]
    return 1 if is_images[0] and is_images[1] else 2


def present_instead(missing: str, data_dir: str) -> list[tuple[str, bool]]:
    """The other data sets whose files are found in `data_dir`, each with whether it is shaped like `missing`
    (channels, size and classes): the same shape first, then other image sets; other kinds of data only when
    nothing closer is there. What to suggest when `missing` cannot be read."""
    try:
        wanted = data_config(missing, data_dir)
    except (OSError, ValueError):  # a user's own config (--config-dir) that this tree does not hold
        wanted = None
    found = []
    for name in data_options():
        if name == missing:
            continue
        try:
            cfg = data_config(name, data_dir)
            present, _ = files_present(cfg)
        except Exception:  # an unreadable config must not hide the error being explained
            continue
        if present:
            found.append((closeness(cfg, wanted), name))
    nearest = min((rank for rank, _ in found), default=2)
    return [(name, rank == 0) for rank, name in sorted(found) if rank <= max(nearest, 1)]


def suggestion(missing: str | None, data_dir: str) -> str:
    """One sentence naming the data sets present in `data_dir` instead of `missing` ("" when none is)."""
    if not missing:
        return ""
    others = present_instead(missing, data_dir)
    if not others:
        return ""
    shown = ", ".join(f"data={name}" + (" (same shape and classes)" if same else "") for name, same in others[:6])
    return (
        f" Present in {Path(data_dir).resolve()} instead: {shown}{' and more' if len(others) > 6 else ''} "
        f"(`dlfound list data` shows them all)."
    )
