"""`dlfound list [GROUP]`: rich tables of what can be composed: models, datasets, optimizers, schedulers, ...

Each config's first comment line is its description. Models come from the registry (dlfound.models) with
their family, and show parameter counts for MNIST-shaped and CIFAR-shaped input (dlfound.runs.parameter_counts:
built on the meta device, so even the largest costs no memory), cached in the user's cache directory and keyed by
the contents of the model configs and sources, so later listings answer at once; datasets show their sample shape,
classes, size and whether their files are on this machine.
"""

import re
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


# Where one sentence ends and the next begins: a full stop (or ! ?) and a capital, not "e.g. the" or "Fig. 1".
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`(])")
# A description's length beyond which no further sentence is added (the first is always whole).
DESCRIPTION_CHARS = 160


def description(path: Path) -> str:
    """The config's first comment block, as whole sentences (a sentence runs on over the block's lines), as many
    as fit DESCRIPTION_CHARS; rich markup escaped, so that `[low, high]` shows as typed."""
    from rich.markup import escape

    block = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("# @package"):
            continue
        if not line.startswith("#"):
            if block:
                break
            continue
        block.append(line.lstrip("#").strip())
    sentences = SENTENCE_END.split(" ".join(block).strip())
    text = sentences[0]
    for sentence in sentences[1:]:
        if len(text) + 1 + len(sentence) > DESCRIPTION_CHARS:
            break
        text += " " + sentence
    return escape(text)


# The inputs whose parameter counts the table shows: MNIST's and CIFAR-10's.
COUNTED_ON = {"1x28x28": (1, 28, 10), "3x32x32": (3, 32, 10)}


def counted_models() -> list[list[str]]:
    """[name, family, count per COUNTED_ON] for every registered model, in the registry's (curriculum) order."""
    from dlfound.models import list_models, model_family
    from dlfound.runs.parameter_counts import InputShape, count_parameters

    def millions(count: int | None) -> str:
        return "-" if count is None else f"{count / 1e6:.3f}M"

    return [
        [name, model_family(name), *(millions(count_parameters(name, InputShape(*s))) for s in COUNTED_ON.values())]
        for name in list_models()
    ]


def cached_models() -> list[list[str]]:
    """counted_models(), from the user's cache where the configs and the models' source are unchanged (then torch
    is not even imported)."""
    from dlfound.files import cached_json
    from dlfound.runs.parameter_counts import counts_key

    return cached_json("model-parameters", counts_key("list", *COUNTED_ON), counted_models)


def model_rows() -> list[list[str]]:
    """One row per registered model, described by its config."""
    from dlfound.runs.paths import config_dir

    return [[*row, description(config_dir() / "model" / f"{row[0]}.yaml")] for row in cached_models()]


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
    from rich.markup import escape

    from dlfound.runs.datasets import data_config, data_options, files_present
    from dlfound.runs.paths import config_dir

    rows = []
    for name in data_options():
        cfg = data_config(name)
        present, where = files_present(cfg)
        here = "[green]yes[/]" if present or present is None else f"[red]no[/] ({escape(where)})"
        rows.append(
            [
                name,
                sample_shape(cfg),
                str(cfg.get("num_classes")),
                DATA_SIZES.get(name, "-"),
                here,
                description(config_dir() / "data" / f"{name}.yaml"),
            ]
        )
    return rows


def main(args: list[str]) -> None:
    from dlfound.runs.options import print_help_if_asked

    if print_help_if_asked(args, __doc__):
        return
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
                for col in ("name", "family", *(f"params {shape}" for shape in COUNTED_ON), "description"):
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
