"""dlfound from Python: train, load and compare runs in a notebook or a script, with the CLI's semantics.

    import dlfound

    run = dlfound.train("model=lenet5", "data=mnist", "trainer.max_epochs=1")   # as `dlfound train ...`
    run.metrics["test/acc"], run.curves()["val/acc"], run.network()             # results, curves, nn.Module
    run = dlfound.load("outputs/train/runs/2026-...")                           # a run folder or a checkpoint
    runs = dlfound.sweep("optim.lr=0.1,0.01")                                    # as `dlfound train -m ...`
    dlfound.report(runs)                                                         # rows as `dlfound report`
    dlfound.figure("vanishing")                                                  # the picture (PIL image)
    net = dlfound.create_model("resnet18", num_classes=10); dlfound.list_models("resnet*")

`train` and `sweep` run the very code of `dlfound train` (the same overrides, checks, run folders and
results.json) in this process. A mistake raises `DlfoundError` carrying the paragraph the CLI prints, and never
exits the interpreter; Hydra's global state, the logging setup and the environment are restored after each call,
so calls do not leak into each other. Pictures are PIL images, which Jupyter displays inline.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlfound.errors import CheckpointError, DlfoundError
from dlfound.runs.in_process import in_process, launch_train

if TYPE_CHECKING:
    import torch
    from PIL.Image import Image
    from torch import nn

__all__ = ["DlfoundError", "Run", "create_model", "figure", "list_models", "load", "report", "sweep", "train"]


def _override(key: str, value: Any) -> str:
    """A keyword argument as a Hydra override: `trainer__max_epochs=1` -> `trainer.max_epochs=1`."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, (list, tuple)):
        text = "[" + ",".join(_override("_", v).split("=", 1)[1] for v in value) + "]"
    else:
        text = str(value)
    return f"{key.replace('__', '.')}={text}"


def train(*overrides: str, **settings: Any) -> Run:
    """Train and test one model, exactly as `dlfound train OVERRIDES` does, and return its run.

    Args:
        *overrides: Hydra overrides as on the command line, e.g. ``"model=lenet5"``, ``"trainer.max_epochs=1"``,
            ``"resume=RUN_FOLDER"``.
        **settings: more overrides as keywords, a double underscore for a dot: ``seed=1``,
            ``trainer__max_epochs=1``.

    Raises:
        DlfoundError: a mistake the user can fix (unknown model, missing data, a bad value); its message is the
            paragraph `dlfound train` prints.
    """
    args = [*overrides, *(_override(k, v) for k, v in settings.items())]
    if any(a in ("-m", "--multirun") for a in args):
        raise DlfoundError(
            "dlfound.train runs one job; for a sweep call dlfound.sweep with the same overrides (without -m)."
        )
    [folder] = launch_train(args, multirun=False)
    return Run(folder)


def sweep(*overrides: str, **settings: Any) -> list[Run]:
    """Train every combination of comma-separated values, as `dlfound train -m OVERRIDES` does, e.g.
    ``dlfound.sweep("optim.lr=0.1,0.01", "seed=1,2")``; returns the jobs' runs in order. A failed job is recorded
    in its results.json and the others go on; at the end a DlfoundError says which failed, as the CLI does."""
    args = [a for a in (*overrides, *(_override(k, v) for k, v in settings.items())) if a not in ("-m", "--multirun")]
    return [Run(folder) for folder in launch_train(args, multirun=True)]


class Run:
    """A finished (or failed) run: its folder, config, results, curves and trained network.

    Made by `dlfound.train`, `dlfound.sweep` and `dlfound.load`. The family methods (`predict` for classifiers,
    `sample` for generative models, `generate` for language models, `restore` for restoration models) raise
    DlfoundError on a run of another family.
    """

    def __init__(self, path: str | Path, checkpoint: str | Path | None = None):
        self.path = Path(path)
        self._checkpoint = Path(checkpoint) if checkpoint else None

    def __repr__(self) -> str:
        status = self.results.get("status", "no results.json")
        return f"Run({str(self.path)!r}, status={status!r})"

    @property
    def results(self) -> dict:
        """The run's results.json (the documented contract): metrics, monitor, epochs, wall time, overrides, ..."""
        from dlfound.runs.results import read_results

        return read_results(self.path) or {}

    @property
    def metrics(self) -> dict[str, float]:
        """The final metrics: the test metrics of the best checkpoint and the best monitored value."""
        return dict(self.results.get("metrics") or {})

    @property
    def config(self) -> dict:
        """The run's config as composed (its folder's .hydra/config.yaml, or the checkpoint's own copy)."""
        import yaml

        saved = self.path / ".hydra" / "config.yaml"
        if saved.is_file():
            return yaml.safe_load(saved.read_text()) or {}
        from dlfound.runs.checkpoint import load_checkpoint

        return dict(load_checkpoint(self.checkpoint)["dlfound_config"])

    @property
    def checkpoint(self) -> Path:
        """The checkpoint the run was tested on (its best), else its last; or the one `dlfound.load` was given."""
        from dlfound.runs.records import best_checkpoint
        from dlfound.runs.results import last_checkpoint

        found = self._checkpoint or best_checkpoint(self.path) or last_checkpoint(self.path)
        if not found:
            raise CheckpointError(
                f"{self.path} holds no checkpoint (checkpoints/best-*.ckpt or last.ckpt): the run "
                "stopped before its first validation, or its files were moved."
            )
        return Path(found)

    def curves(self, x: str = "epoch") -> dict[str, dict[int, float]]:
        """The learning curves of csv/metrics.csv: {column: {epoch (or step with x="step"): value}}, e.g.
        ``run.curves()["val/acc"]``."""
        from dlfound.runs.records import read_curves

        return read_curves(self.path, x)

    def network(self) -> nn.Module:
        """The trained network as a plain ``nn.Module`` in eval mode: the best checkpoint's weights, their
        average (EMA) where the task keeps one."""
        from dlfound.runs.build import load_network

        return load_network(self.checkpoint)[0]

    def predict(self, images: torch.Tensor | str | Path | Sequence[str | Path], device: str = "cpu") -> torch.Tensor:
        """Class probabilities [N, classes] of a classifier. `images`: image files (prepared as `dlfound predict`
        prepares them) or a tensor [N, C, H, W] of raw samples as the data set stores them (uint8, or floats in
        [0, 1]), which are scaled and standardised as in testing."""
        import torch

        from dlfound.commands.predict import load_classifier
        from dlfound.data.imagefolder import load_image

        task, datamodule, _ = load_classifier(str(self.checkpoint), device)
        if not isinstance(images, torch.Tensor):
            files = [images] if isinstance(images, (str, Path)) else list(images)
            images = torch.stack([load_image(f, datamodule.in_channels, datamodule.image_size) for f in files])
        with torch.no_grad():
            return torch.softmax(task(datamodule.prepare(images.to(device), training=False)).float(), dim=-1)

    def sample(self, n: int = 64, *, picture: bool = True, **options: Any) -> Image | torch.Tensor:
        """Samples of a generative model: the picture `dlfound sample` writes (an image grid, or for 2-D models a
        scatter plot) as a PIL image, or with ``picture=False`` the samples themselves. `options` are those of
        `dlfound sample`: nrow, temperature, class_ (the class of a conditional model), interpolate, steps,
        sampler, eta, guidance, path, seed, device."""
        import torch
        from PIL import Image

        from dlfound.commands.sample import OPTIONS, USAGE, render
        from dlfound.runs.build import load_generative
        from dlfound.runs.console import failures_raise
        from dlfound.runs.options import parse_options, resolve_device

        options = {("class" if k == "class_" else k): v for k, v in options.items()}
        args = [_override(k, v) for k, v in {"n": n, "ckpt_path": self.checkpoint, **options}.items()]
        with failures_raise():
            parsed, _ = parse_options(args, OPTIONS, "sample", USAGE)
            device = resolve_device(parsed["device"])
            torch.manual_seed(parsed["seed"])
            task, datamodule = load_generative(str(self.checkpoint), device)
            drawn, samples = render(task, datamodule, parsed)
        return Image.fromarray(drawn) if picture else samples

    def generate(
        self,
        prompt: str = "\n",
        length: int = 500,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int = 0,
        device: str = "cpu",
    ) -> str:
        """Text from a language model, continuing `prompt` by `length` characters (as `dlfound generate`)."""
        import torch

        from dlfound.commands.generate import load_language_model

        task = load_language_model(str(self.checkpoint), device)
        generator = torch.Generator(device=device).manual_seed(seed)
        return prompt + "".join(task.generate(prompt, length, temperature, top_k, generator))

    def restore(self, image: str | Path, output: str | Path | None = None, **options: Any) -> tuple[Image, dict]:
        """(the restored picture as a PIL image, what was measured) for an image file, as `dlfound restore` does;
        `options` are the command's: task, sigma, scale, upscale, blur_size, blur_sigma, mask_ratio, mask,
        degrade, reference, degraded_output, seed, device and the pnp_* settings. Without `output` the picture is
        written to a temporary file only."""
        import tempfile

        from PIL import Image

        from dlfound.commands.restore import OPTIONS, USAGE
        from dlfound.runs.console import failures_raise
        from dlfound.runs.options import parse_options
        from dlfound.runs.restoration import restore

        with tempfile.TemporaryDirectory() as scratch:
            target = Path(output) if output else Path(scratch) / "restored.png"
            values = {"ckpt_path": self.checkpoint, "input": image, "output": target, **options}
            with failures_raise():
                parsed, _ = parse_options([_override(k, v) for k, v in values.items()], OPTIONS, "restore", USAGE)
                info = restore(parsed)
            with Image.open(info["output"]) as picture:  # a numbered name when output existed
                return picture.copy(), info


def load(path: str | Path) -> Run:
    """The run of a run folder (one holding results.json or .hydra/) or of a checkpoint file (`.ckpt`); a
    checkpoint inside RUN/checkpoints/ belongs to RUN, and its methods use that very checkpoint."""
    path = Path(path).expanduser()
    if path.is_file():
        folder = path.parent.parent if path.parent.name == "checkpoints" else path.parent
        return Run(folder, checkpoint=path)
    if not path.is_dir():
        raise DlfoundError(
            f"{path}: no such run folder or checkpoint. Give a run's folder (e.g. "
            "outputs/train/runs/<name>) or one of its checkpoints/*.ckpt."
        )
    if not ((path / "results.json").is_file() or (path / ".hydra").is_dir()):
        raise DlfoundError(
            f"{path} is not a run folder (it holds neither results.json nor .hydra/); a sweep's "
            "jobs are its numbered sub-folders, and dlfound.report reads a whole sweep."
        )
    return Run(path)


def report(paths: str | Path | Run | Sequence[str | Path | Run], metrics: Sequence[str] | None = None) -> list[dict]:
    """The table `dlfound report` prints, as rows: one dict per run, or per group of runs that differ only in
    seed, with the overrides that differ, each metric's mean (and ``METRIC_std`` over seeds), ``n`` (runs),
    ``status`` and ``folders``; best first by the first metric (default: the monitored metric's test value)."""
    from dlfound.runs.console import failures_raise
    from dlfound.runs.records import (
        check_metric,
        default_metric,
        group_runs,
        higher_is_better,
        load_runs,
        sort_rows,
        split_keys,
    )

    given = [paths] if isinstance(paths, (str, Path, Run)) else list(paths)
    folders = [p.path if isinstance(p, Run) else Path(p).expanduser() for p in given]
    with failures_raise():
        runs = load_runs(folders)
        names = [check_metric(m, runs) for m in metrics] if metrics else [default_metric(runs)]
    differing, _ = split_keys(runs)
    rows = sort_rows(group_runs(runs, differing), names[0], higher_is_better(names[0], runs))
    table = []
    for row in rows:
        cells: dict[str, Any] = dict(row.label)
        for name in names:
            mean, std, _ = row.stats(name)
            cells[name], cells[f"{name}_std"] = mean, std
        cells.update(n=len(row.runs), status=row.status, folders=[str(run.folder) for run in row.runs])
        table.append(cells)
    return table


def figure(name: str, *overrides: str, budget: str = "cpu", redraw: bool = False) -> Image:
    """A lecture's figure as `dlfound figure NAME` draws it (running its sweeps, reusing finished runs), returned
    as a PIL image; the PNG and its sidecar stay in OUTPUTS/figure/NAME/BUDGET/."""
    from PIL import Image

    from dlfound.commands.figure import main as figure_command
    from dlfound.runs.figures import folder_of

    args = [name, *overrides, "--budget", budget, *(["--redraw"] if redraw else [])]
    with in_process():
        figure_command(args)
    with Image.open(folder_of(name, budget, list(overrides)) / f"{name}.png") as picture:
        return picture.copy()


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """A network of the zoo by its registered name, as timm's `create_model`: ``create_model("resnet18",
    num_classes=10)``; the keywords are the constructor's (in_channels, num_classes, image_size, family options)."""
    from dlfound.models.registry import get_model

    try:
        constructor = get_model(name)
    except ValueError as err:
        raise DlfoundError(str(err)) from None
    return constructor(**kwargs)


def list_models(pattern: str = "*", family: str | None = None) -> list[str]:
    """The registered model names matching a shell-style `pattern` (``"resnet*"``), optionally of one family
    (classifier, vae, gan, flow, diffusion, restoration, sequence, seq2seq, ctc, bayesian), as timm's
    `list_models`."""
    from dlfound.models.registry import list_models as registered

    try:
        names = registered(family)
    except ValueError as err:
        raise DlfoundError(str(err)) from None
    return [n for n in names if fnmatch.fnmatchcase(n, pattern)]
