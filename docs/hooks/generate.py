"""The docs' tables that exist in code, generated at build time (an mkdocs hook, named in mkdocs.yml), so they cannot
drift: a page says `<!-- generated: NAME -->` on a line of its own and the build puts the table there.

- `zoo`: the classifiers of the model registry with their parameter counts (dlfound.runs.parameter_counts: built
  on the meta device, cached in the user's cache directory), beside the papers' numbers and ours (zoo_results.yaml);
- `config-groups`: every config group and its options with each config's description (`dlfound list`'s source);
- `commands`: the commands of cli.py's COMMANDS table with each one's --help;
- `gallery`: the course figures of the figure registry (configs/figure/), each PNG of docs/figures with what it
  shows, its command and runs, and its measured numbers (figure_results.yaml, and a kept sidecar's panel numbers).

An unknown marker, a figure without a PNG, or a results entry the registry does not know fails the build.
"""

import contextlib
import functools
import importlib
import io
import os
import re
import sys
from pathlib import Path

import yaml
from mkdocs.exceptions import PluginError

HOOKS = Path(__file__).resolve().parent
DOCS = HOOKS.parent
REPO = DOCS.parent
CONFIGS = REPO / "configs"
# The checkout's sources, not an installed dlfound of another version: the site documents this tree.
sys.path.insert(0, str(REPO / "src"))

MARKER = re.compile(r"^<!-- generated: ([\w-]+) -->$", re.MULTILINE)
# The shapes a zoo model's parameters are counted at: (in_channels, image_size, num_classes, stem).
COUNT_SHAPES = {
    "1x28x28": (1, 28, 10, "small"),
    "3x32x32": (3, 32, 10, "small"),
    "ImageNet stem": (3, 224, 1000, "imagenet"),
}
ZOO_FAMILIES = ("classifier", "bayesian")
HELP_COLUMNS = "100"


def cell(text) -> str:
    """A value as one Markdown table cell: no line breaks, pipes escaped outside code spans (inside them the table
    extension leaves pipes alone and would show the backslash)."""
    parts = " ".join(str(text).split()).split("`")
    return "`".join(part if i % 2 else part.replace("|", "\\|") for i, part in enumerate(parts))


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def parameter_counts(names: tuple[str, ...]) -> dict[str, dict[str, int | None]]:
    """Each model's count at each of COUNT_SHAPES, cached as `dlfound list model` caches its own."""
    from dlfound.files import cached_json
    from dlfound.runs.parameter_counts import InputShape, count_parameters, counts_key

    def count() -> dict[str, dict[str, int | None]]:
        return {
            name: {label: count_parameters(name, InputShape(*shape)) for label, shape in COUNT_SHAPES.items()}
            for name in names
        }

    return cached_json("docs-parameters", counts_key("docs", *names), count)


def millions(count: int | None) -> str:
    if count is None:
        return "-"
    return f"{count / 1e6:.2f}M" if count >= 100_000 else f"{count / 1e3:.1f}k"


def zoo() -> str:
    from dlfound.models import list_models

    names = tuple(name for family in ZOO_FAMILIES for name in list_models(family))
    results = yaml.safe_load((HOOKS / "zoo_results.yaml").read_text())
    unknown = sorted(set(results) - set(names))
    if unknown:
        raise PluginError(f"docs/hooks/zoo_results.yaml names models the registry does not have: {unknown}")
    counts = parameter_counts(names)
    rows = []
    for name in names:
        entry = results.get(name, {})
        rows.append(
            [
                entry.get("title") or config_description(CONFIGS / "model" / f"{name}.yaml"),
                f"`{name}`",
                *(millions(counts[name][label]) for label in COUNT_SHAPES),
                entry.get("reference", ""),
                entry.get("ours", ""),
            ]
        )
    header = ["model", "config", *(f"params {label}" for label in COUNT_SHAPES), "reference (source)", "ours"]
    return table(header, rows)


def config_description(path: Path) -> str:
    """The config's first comment block, as `dlfound list` shows it (rich's escapes undone)."""
    from dlfound.commands.list import description

    return description(path).replace("\\[", "[")


def config_groups() -> str:
    from dlfound.commands.list import GROUPS, options, plugin_options
    from dlfound.models import list_models, model_family

    sections = []
    summary = []
    # `dlfound list`'s groups, and the two that only say where things live (one option each).
    for group in (*GROUPS, "paths", "hydra"):
        paths = options(group)
        plugins = plugin_options(group)
        summary.append([f"`{group}`", ", ".join([p.stem for p in paths] + plugins)])
        if group == "model":
            registered = set(list_models())
            rows = [
                [f"`{p.stem}`", model_family(p.stem) if p.stem in registered else "-", config_description(p)]
                for p in paths
            ]
            body = table(["option", "family", "description"], rows)
        else:
            rows = [[f"`{p.stem}`", config_description(p)] for p in paths]
            rows += [[f"`{name}`", "from Hydra's installed plugins"] for name in plugins]
            body = table(["option", "description"], rows)
        sections.append(f"### `{group}`\n\n`dlfound train {group}=NAME`\n\n{body}")
    return table(["group", "options"], summary) + "\n\n" + "\n\n".join(sections)


def command_help(module: str) -> str:
    """What `dlfound COMMAND --help` prints, run in this process at a fixed width."""
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            importlib.import_module(f"dlfound.commands.{module}").main(["--help"])
    finally:
        if previous is None:
            os.environ.pop("COLUMNS")
        else:
            os.environ["COLUMNS"] = previous
    return out.getvalue().rstrip()


def commands() -> str:
    from dlfound.cli import COMMANDS

    rows = [
        [f"`dlfound {name}`", f"`{command.usage}`", " ".join(command.summary)] for name, command in COMMANDS.items()
    ]
    sections = []
    for name, command in COMMANDS.items():
        # `dlfound train --help` is Hydra's list of config groups: the configs page has them with descriptions.
        text = "\n".join(command.summary) if name == "train" else command_help(command.module)
        sections.append(f"### `dlfound {name}`\n\n```text\ndlfound {name} {command.usage}\n\n{text}\n```")
    return table(["command", "arguments", "what it does"], rows) + "\n\n" + "\n\n".join(sections)


def sidecar_numbers(name: str) -> list[str]:
    """The per-panel numbers of a sidecar kept beside the PNG (the bullet list `dlfound figure` writes)."""
    path = DOCS / "figures" / "sidecars" / f"{name}.md"
    if not path.is_file():
        return []
    return [line for line in path.read_text().splitlines() if line.startswith("- ")]


def gallery() -> str:
    from dlfound.runs.figures import figure_names, load_spec, sweeps

    recorded = yaml.safe_load((HOOKS / "figure_results.yaml").read_text())
    names = figure_names()
    unknown = sorted(set(recorded["figures"]) - set(names))
    if unknown:
        raise PluginError(f"docs/hooks/figure_results.yaml names figures the registry does not have: {unknown}")
    missing = [name for name in names if not (DOCS / "figures" / f"figure_{name}.png").is_file()]
    if missing:
        raise PluginError(
            f"figures without a PNG in docs/figures: {missing}; draw each with "
            "`dlfound figure NAME --out docs/figures/figure_NAME.png`"
        )
    ordered = [*recorded["figures"], *(name for name in names if name not in recorded["figures"])]
    specs = {name: {"name": name, **load_spec(name)} for name in ordered}
    index = table(["figure", "what it shows"], [[f"[{name}](#{name})", spec["title"]] for name, spec in specs.items()])
    sections = [index, f"Measured on {' '.join(recorded['machine'].split())}."]
    for name in ordered:
        spec = specs[name]
        entry = recorded["figures"].get(name)
        budgets = ", ".join(f"`{b}`" for b in spec.get("budgets") or {"cpu": []})
        measured = (
            f"**Measured** ({cell(entry['runs'])}): {' '.join(entry['measured'].split())}"
            if entry
            else "**Measured**: not yet drawn for the gallery."
        )
        panel_numbers = sidecar_numbers(name)
        runs = "\n".join(
            f"    - **{label}**: `{' '.join(overrides)}`" for label, overrides in sweeps(spec, "cpu", []).items()
        )
        parts = [
            f"## {name}",
            f"![dlfound figure {name}: {spec['title']}](figures/figure_{name}.png)",
            f"**{spec['title']}.** {' '.join(spec.get('shows', '').split())} Source: {spec.get('paper', '-')}.",
            measured,
            ("The numbers per panel, from the sidecar:\n\n" + "\n".join(panel_numbers)) if panel_numbers else "",
            f"```bash\ndlfound figure {name}\n```",
            f'??? note "The runs behind the lines (budgets: {budgets})"\n\n'
            f"    Each line is one `dlfound train -m` sweep; at the `cpu` budget:\n\n{runs}",
        ]
        sections.append("\n\n".join(part for part in parts if part))
    return "\n\n".join(sections)


GENERATORS = {"zoo": zoo, "config-groups": config_groups, "commands": commands, "gallery": gallery}


@functools.cache
def generated(name: str) -> str:
    return GENERATORS[name]()


def on_page_markdown(markdown: str, page, config, files, **kwargs) -> str:
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise PluginError(f"{page.file.src_path}: unknown generated table {name!r}; known: {', '.join(GENERATORS)}")
        return generated(name)

    return MARKER.sub(replace, markdown)
