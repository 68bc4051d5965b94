"""`dlfound list [GROUP]`: rich tables of what can be composed: models, datasets, optimizers, schedulers, ...

Each config's first comment line is its description. Models come from the registry (dlfound.models) with
their family, and show parameter counts for MNIST-shaped and
CIFAR-shaped input (built on the meta device, so even the largest costs no memory); datasets show their
sample shape, classes, size and whether their files are on this machine.

Counting the parameters composes the config twice per model (about 20 s for the whole zoo), so the counts are
cached in the user's cache directory (dlfound.files.user_cache_dir), keyed by the contents of the config tree and
of the models' source: any change to either counts afresh, and later listings answer at once.
"""

import json
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


def parameter_count(model_cfg: dict) -> str:
    import torch

    from dlfound.runs.build import instantiate_section

    try:
        with torch.device("meta"):
            model = instantiate_section({"model": model_cfg}, "model")
        return f"{sum(p.numel() for p in model.parameters()) / 1e6:.3f}M"
    except Exception:
        return "-"


COUNTED_ON = ("mnist", "cifar10")  # the data sets whose input shapes the parameter columns show


def counted_parameters(name: str) -> list[str]:
    """The model's parameter counts on COUNTED_ON's inputs, each composed as `dlfound train` composes it."""
    from omegaconf import OmegaConf

    from dlfound.runs.build import compose

    counts = []
    for data in COUNTED_ON:
        try:
            cfg = compose([f"model={name}", f"data={data}", "hydra.runtime.output_dir=."])
            counts.append(parameter_count(OmegaConf.to_container(cfg.model, resolve=True)))
        except Exception:
            counts.append("-")
    return counts


def counts_key() -> str:
    """What the counts depend on: dlfound's version, the config tree and the models' source, by content."""
    import dlfound
    from dlfound.files import contents_key
    from dlfound.runs.paths import config_dir

    models_source = Path(__file__).resolve().parents[1] / "models"
    return contents_key([(config_dir(), "*.yaml"), (models_source, "*.py")], dlfound.__version__, *COUNTED_ON)


def counted_models() -> list[list[str]]:
    """[name, family, count per COUNTED_ON] for every registered model, in the registry's (curriculum) order."""
    from dlfound.models import list_models, model_family

    return [[name, model_family(name), *counted_parameters(name)] for name in list_models()]


def cached_models() -> list[list[str]]:
    """counted_models(), from the cache where the key matches (then torch is not even imported); else counted and
    written back. A cache that cannot be written (a full disk, a read-only home) only costs the next listing the
    time; concurrent listings each write a whole file and rename it into place."""
    from dlfound.files import user_cache_dir, write_text

    path = user_cache_dir("model-parameters") / f"{counts_key()}.json"
    try:
        return json.loads(path.read_text())["models"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    models = counted_models()
    try:
        write_text(path, json.dumps({"models": models}, indent=0))
    except OSError:
        pass
    return models


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
