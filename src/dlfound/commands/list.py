"""`dlfound list [GROUP]`: rich tables of what can be composed: models, datasets, optimizers, schedulers, ...

Each config's first comment line is its description. Models come from the registry (dlfound.models) with
their family, and show parameter counts for MNIST-shaped and
CIFAR-shaped input (built on the meta device, so even the largest costs no memory); datasets show their
sample shape, classes, size and whether their files are on this machine.
"""

from pathlib import Path

from dlfound.errors import ConfigError

GROUPS = (
    "model",
    "data",
    "optim",
    "sched",
    "experiment",
    "trainer",
    "task",
    "debug",
    "callbacks",
    "logger",
    "hparams_search",
    "hydra/launcher",
)
ALIASES = {
    "launcher": "hydra/launcher",
    "launchers": "hydra/launcher",
    "models": "model",
    "datasets": "data",
    "dataset": "data",
    "optimizers": "optim",
    "optimizer": "optim",
    "schedulers": "sched",
    "scheduler": "sched",
    "experiments": "experiment",
    "trainers": "trainer",
    "tasks": "task",
}
# Sizes of the standard sets (train + test), for the table.
DATA_SIZES = {
    "digits": "1,797",
    "mnist": "70,000",
    "fashionmnist": "70,000",
    "cifar10": "60,000",
    "cifar100": "60,000",
    "svhn": "99,289",
    "cifar10_jpeg": "60,000",
}


def options(group: str) -> list[Path]:
    from dlfound.runs.paths import config_dir

    return sorted(p for p in (config_dir() / group).glob("*.yaml") if not p.name.startswith("_"))


def plugin_options(group: str) -> list[str]:
    """Options that Hydra's installed plugins register (the submitit and joblib launchers), not in our tree."""
    from hydra.core.config_store import ConfigStore
    from hydra.core.plugins import Plugins

    Plugins.instance()  # imports the plugins, which register their configs
    try:
        return sorted(name.removesuffix(".yaml") for name in ConfigStore.instance().list(group))
    except OSError:  # the group has no registered options
        return []


def description(path: Path) -> str:
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("#") and not line.startswith("# @package"):
            return line.lstrip("# ").strip()
    return ""


def parameter_count(model_cfg: dict) -> str:
    import torch

    from dlfound.runs.build import instantiate_section

    try:
        with torch.device("meta"):
            model = instantiate_section({"model": model_cfg}, "model")
        return f"{sum(p.numel() for p in model.parameters()) / 1e6:.3f}M"
    except Exception:
        return "-"


def model_rows() -> list[list[str]]:
    """One row per registered model, in the registry's (curriculum) order, described by its config."""
    from omegaconf import OmegaConf

    from dlfound.models import list_models, model_family
    from dlfound.runs.build import compose
    from dlfound.runs.paths import config_dir

    rows = []
    for name in list_models():
        counts = []
        for data in ("mnist", "cifar10"):
            try:
                cfg = compose([f"model={name}", f"data={data}", "hydra.runtime.output_dir=."])
                counts.append(parameter_count(OmegaConf.to_container(cfg.model, resolve=True)))
            except Exception:
                counts.append("-")
        rows.append([name, model_family(name), *counts, description(config_dir() / "model" / f"{name}.yaml")])
    return rows


def sample_shape(cfg) -> str:
    """What one sample looks like: C x H x W images, T x F sequences, T characters, or "-" (pairs of strings)."""
    if cfg.get("strip_width"):
        shape = [cfg.in_channels, cfg.image_size, cfg.strip_width]
    elif cfg.get("block_size"):
        shape = [cfg.block_size]
    elif cfg.get("seq_len"):
        shape = [cfg.seq_len + (20 if cfg.get("readout") == "all" else 0), cfg.get("in_features") or 1]
    elif cfg.get("kind") in ("addition", "sorting"):
        return "-"
    else:
        shape = [cfg.in_channels] + ([cfg.image_size] * 2 if cfg.get("image_size") else [])
    return "x".join(map(str, shape))


def data_rows() -> list[list[str]]:
    from omegaconf import OmegaConf

    from dlfound.data.vision import LAYOUTS, TorchvisionDataModule
    from dlfound.runs.build import compose

    rows = []
    for path in options("data"):
        cfg = compose([f"data={path.stem}", "hydra.runtime.output_dir=."]).data
        name = cfg.get("name")
        if name in LAYOUTS:
            present = TorchvisionDataModule.files_present(name, cfg.data_dir)
            where = cfg.data_dir
        elif "root" in cfg:
            present, where = Path(cfg.root).is_dir(), cfg.root
        elif "path" in cfg:
            where = "data.path=FILE" if OmegaConf.is_missing(cfg, "path") else cfg.path
            present = not OmegaConf.is_missing(cfg, "path") and Path(cfg.path).is_file()
        else:
            present, where = True, "generated / bundled"
        rows.append(
            [
                path.stem,
                sample_shape(cfg),
                str(cfg.get("num_classes")),
                DATA_SIZES.get(path.stem, "-"),
                "[green]yes[/]" if present else f"[red]no[/] ({where})",
                description(path),
            ]
        )
    return rows


def main(args: list[str]) -> None:
    from rich.table import Table

    from dlfound.runs.console import console, fail

    wanted = [ALIASES.get(a, a) for a in args] or list(GROUPS[:5])
    unknown = [g for g in wanted if g not in GROUPS]
    if unknown:
        fail(
            f"dlfound list: unknown group {', '.join(unknown)}; choose from {', '.join(GROUPS)}"
            + (" (the figures: `dlfound figure`)" if "figure" in unknown else "")
        )
    try:
        for group in wanted:
            if group == "model":
                table = Table(title="models (dlfound train model=NAME)", title_style="bold")
                for col in ("name", "family", "params 1x28x28", "params 3x32x32", "description"):
                    table.add_column(col, justify="right" if col.startswith("params") else "left")
                rows = model_rows()
            elif group == "data":
                table = Table(title="datasets (dlfound train data=NAME)", title_style="bold")
                for col in ("name", "shape", "classes", "size", "here", "description"):
                    table.add_column(col)
                rows = data_rows()
            else:
                table = Table(title=f"{group} (dlfound train {group}=NAME)", title_style="bold")
                table.add_column("name")
                table.add_column("description")
                rows = [[p.stem, description(p)] for p in options(group)]
                rows += [[name, "from Hydra's installed plugins"] for name in plugin_options(group)]
            for row in rows:
                table.add_row(*row)
            console.print(table)
    except ConfigError as err:
        fail(str(err))
