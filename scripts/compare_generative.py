"""One table for every generative family: VAEs, flows, GANs, diffusion and score models, scored the same way.

    python scripts/compare_generative.py features=LENET_RUN/checkpoints/best-epoch001.ckpt n=10000 \\
        runs/mnist_vae runs/mnist_realnvp runs/mnist_dcgan runs/mnist_ddpm runs/mnist_ddpm@ddim:50
    python scripts/compare_generative.py runs/ring8_gan runs/ring8_wgan_gp runs/ring8_ddpm markdown=ring.md

Arguments: any number of run folders or checkpoint files, mixed with key=value options.
  RUN               a run folder of `dlfound train`; which checkpoint is scored follows `checkpoint=`:
                    best (default): the best checkpoint named in RUN/results.json (the one the run was tested
                    on, so its bits/dim belong to it), else the newest RUN/checkpoints/best-*.ckpt, else last.ckpt;
                    last: RUN/checkpoints/last.ckpt
  PATH.ckpt         that checkpoint; when it lies in RUN/checkpoints/, RUN/results.json still gives the training
                    time and bits/dim
  ...@SAMPLER[:K]   a diffusion or score model with its own sampler and steps, e.g. RUN@ddim:50 beside RUN@ddpm
                    (the same checkpoint twice, one row each); overrides sampler=/steps= for that argument
Options:
  features=PATH     the classifier checkpoint whose penultimate features give FID and KID (required when an
                    image model is listed): `dlfound train experiment=mnist_lenet5 trainer.max_epochs=2`, then its
                    checkpoints/best-*.ckpt; also inception:PATH or pixels (see dlfound.metrics.sample_quality)
  n=10000           samples per image model, scored against the first n test images
  n2d=2500          samples per 2-D model (the PacGAN protocol: a mode is covered with 20 high-quality samples of
                    2,500)
  sampler=NAME      for diffusion models (ddpm, ddim) and score models (annealed, langevin); other families
                    ignore it; default: each run's configured sampler
  steps=K           denoising steps (diffusion) or Langevin steps per noise level (score models)
  checkpoint=best   or last (run folders only)
  device=auto       cpu, cuda or auto
  seed=0            every model samples from the same seed
  floor=true        add the data's own rows: training images against test images (FID/KID floor), and two
                    independent draws of a 2-D mixture (the MMD floor)
  markdown=PATH     also write the tables as Markdown, ready for the README

Columns (images): params = every parameter of the task's network (`task.net`: encoder and decoder of a VAE,
generator and discriminator of a GAN, whose JSON line adds generator_params; not the EMA copy); training =
`fit_time_s` of results.json and the trainer it ran on; bits/dim = results.json's test/bpd (flows, diffusion
models on images, measured by the run's test on its best checkpoint; VAEs and GANs have none: "–"); FID and KID
(unscaled, as the runs log them) on the features of `features=`, n samples against the first n test images
(conditional models cycle through the classes); sampling / 1k = seconds to draw 1,000 samples in batches of 500
on `device` (synchronised on a GPU, after a small warm-up draw). Columns (2-D): modes covered (of the mixture's)
and the high-quality fraction (within 3 std of a centre), weight error (the largest gap between the sampled and
the true weight of a mode), MMD^2 (multi-bandwidth Gaussian kernel, unbiased, so it can dip below 0) against the
test points. Every model prints one JSON line as it is scored; rich tables follow. FID from a dlfound classifier
compares only with FIDs on the same checkpoint, never with published Inception FIDs.
"""

import importlib
import json
import math
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dlfound.runs.results import read_results

USAGE = (
    "python scripts/compare_generative.py features=CLASSIFIER.ckpt [n=10000] [n2d=2500] [sampler=NAME] "
    "[steps=K] [checkpoint=best|last] [device=auto] [seed=0] [floor=true] [markdown=PATH] "
    "RUN_OR_CKPT[@SAMPLER[:STEPS]] ..."
)
CHUNK = 500
NONE = "–"
LENET_HINT = (
    "make one with `dlfound train experiment=mnist_lenet5 trainer.max_epochs=2` and pass "
    "features=RUN/checkpoints/best-*.ckpt (or features=pixels for distances on raw pixels)"
)


def option_table():
    from dlfound.commands.options import Option

    return {
        "features": Option(None),
        "n": Option(10000, int, minimum=2),
        "n2d": Option(2500, int, minimum=2),
        "sampler": Option(None),
        "steps": Option(None, int, minimum=1),
        "checkpoint": Option("best"),
        "device": Option("auto"),
        "seed": Option(0, int),
        "floor": Option(True, bool),
        "markdown": Option(None),
    }


@dataclass
class Entry:
    """One row to measure: a checkpoint, its run folder (if any), and the sampler asked for."""

    arg: str
    ckpt: Path
    run_dir: Path | None
    results: dict | None
    sampler: str | None
    steps: int | None
    own_sampler: bool = False  # given as RUN@SAMPLER
    config: dict = field(default_factory=dict)


# -- arguments -------------------------------------------------------------------------------------------------
def split_args(args: list[str], options: dict) -> tuple[list[str], list[str]]:
    """(key=value options, paths). `parse_options` takes key=value pairs only, so paths are set apart first: an
    argument is an option when its key is one (or looks like one and names no existing file)."""
    opts, paths = [], []
    for arg in args:
        key, eq, _ = arg.partition("=")
        key = key.lstrip("+")
        looks_like_option = eq and re.fullmatch(r"[A-Za-z_][\w.]*", key) and not Path(arg.split("@")[0]).exists()
        (opts if key in options and eq or looks_like_option else paths).append(arg)
    return opts, paths


def split_sampler(arg: str) -> tuple[str, str | None, int | None]:
    """'RUN@ddim:50' -> ('RUN', 'ddim', 50); a path that exists as given keeps its '@'."""
    from dlfound.errors import ConfigError

    if "@" not in arg or Path(arg).exists():
        return arg, None, None
    path, _, spec = arg.rpartition("@")
    name, _, steps = spec.partition(":")
    if not name or (steps and not steps.isdigit()) or steps == "0":
        raise ConfigError(
            f"{arg!r}: after '@' give a sampler and optionally its steps, e.g. RUN@ddim:50 or RUN@annealed"
        )
    return path, name, int(steps) if steps else None


def pick_checkpoint(run_dir: Path, results: dict | None, which: str) -> Path:
    from dlfound.errors import ConfigError

    folder = run_dir / "checkpoints"
    last = folder / "last.ckpt"
    if which == "best":
        named = ((results or {}).get("monitor") or {}).get("best_checkpoint")
        if named:
            for candidate in (folder / Path(named).name, Path(named)):  # the run folder may have been moved
                if candidate.is_file():
                    return candidate
        best = sorted(folder.glob("best*.ckpt"), key=lambda p: p.stat().st_mtime)
        if best:
            return best[-1]
    if last.is_file():
        return last
    have = ", ".join(p.name for p in sorted(folder.glob("*.ckpt"))) if folder.is_dir() else ""
    raise ConfigError(
        f"run folder {run_dir} has no {'checkpoint' if which == 'best' else 'checkpoints/last.ckpt'}"
        f"{f' (it has {have}; try checkpoint=best)' if have else ''}; runs with debug=fast keep "
        "none. Give a run trained without debug=fast, or a checkpoint file"
    )


def resolve(arg: str, which: str, sampler: str | None, steps: int | None) -> Entry:
    from dlfound.errors import ConfigError

    text, own_sampler, own_steps = split_sampler(arg)
    path = Path(text).expanduser()
    if path.is_dir():
        results = read_results(path)
        if results is None and not (path / "checkpoints").is_dir():
            raise ConfigError(
                f"{arg} is a folder but not a dlfound run folder (no results.json, no checkpoints/). "
                "Give run folders of `dlfound train` (they hold results.json and checkpoints/) or "
                "checkpoint files (RUN/checkpoints/last.ckpt)"
            )
        ckpt, run_dir = pick_checkpoint(path, results, which), path
    elif path.is_file():
        ckpt = path
        run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
        results = read_results(run_dir)
        if results is None:
            run_dir = None
    else:
        raise ConfigError(
            f"{arg} is neither a checkpoint nor a run folder: no such file or folder. Give run folders "
            "of `dlfound train` (outputs/train/runs/...) or checkpoint files (RUN/checkpoints/last.ckpt)"
        )
    if own_sampler:
        return Entry(arg, ckpt, run_dir, results, own_sampler, own_steps, own_sampler=True)
    return Entry(arg, ckpt, run_dir, results, sampler, steps)


def task_class(target: str):
    module, _, name = target.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def check_generative(entry: Entry) -> None:
    """Read the checkpoint's config (torch.load with weights_only) and refuse a non-generative task before any
    network or data is built."""
    from dlfound.errors import ConfigError
    from dlfound.runs.checkpoint import load_checkpoint
    from dlfound.tasks.generative import GenerativeTask

    config = load_checkpoint(entry.ckpt)["dlfound_config"]
    target = (config.get("task") or {}).get("_target_", "")
    cls = task_class(target)
    if cls is None or not issubclass(cls, GenerativeTask):
        what = cls.__name__ if cls is not None else (target or "no task")
        raise ConfigError(
            f"{entry.arg}: {entry.ckpt} holds a {what}, not a generative model; this table compares "
            "VAEs, flows, GANs, diffusion and score models. Drop it from the list"
        )
    entry.config = config


# -- labels ----------------------------------------------------------------------------------------------------
def short_name(target: str) -> str:
    return target.rpartition(".")[2] if target else NONE


def describe(entry: Entry, task) -> dict:
    choices = (entry.results or {}).get("choices") or {}
    cfg = entry.config
    model = choices.get("model") or short_name(cfg.get("model", {}).get("_target_", ""))
    family = choices.get("task") or type(task).__name__.removesuffix("Task").lower()
    data = (
        choices.get("data")
        or cfg.get("data", {}).get("name")
        or short_name(cfg.get("data", {}).get("_target_", "")).removesuffix("DataModule").lower()
    )
    name = choices.get("experiment") or model
    return {"model": name, "family": family, "data": data}


def sampler_label(task) -> tuple[str, int]:
    """('ddim 50', network evaluations per sample) for stepwise samplers; ('direct', 1) for one-pass families."""
    return task.sampler_description() if hasattr(task, "sampler_description") else ("direct", 1)


# -- sampling --------------------------------------------------------------------------------------------------
def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def draw(task, n: int, device: str, seed: int, label: str) -> tuple[torch.Tensor, float]:
    """n samples (CPU) in batches of CHUNK, and the seconds they took (synchronised on a GPU; a small warm-up
    draw first there, outside the timing). Conditional models cycle through their classes."""
    from rich.progress import Progress

    from dlfound.runs.console import err_console

    stepwise = hasattr(task, "set_sampler")
    takes_labels = task.num_classes and not hasattr(task, "steps_per_level")  # score models are unconditional
    with torch.no_grad():
        if device.startswith("cuda"):
            task.sample(
                2,
                y=torch.arange(2, device=device) % task.num_classes if takes_labels else None,
                **({"steps": 1} if stepwise else {}),
            )
        torch.manual_seed(seed)
        chunks, made, seconds = [], 0, 0.0
        with Progress(console=err_console, transient=True) as progress:
            bar = progress.add_task(f"sampling {label}", total=n)
            while made < n:
                m = min(CHUNK, n - made)
                y = torch.arange(made, made + m, device=device) % task.num_classes if takes_labels else None
                sync(device)
                start = time.perf_counter()
                x = task.sample(m, y=y)
                sync(device)
                seconds += time.perf_counter() - start
                chunks.append(x.float().cpu())
                made += m
                progress.update(bar, completed=made)
    return torch.cat(chunks), seconds


def as_unit_images(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 255 if x.dtype == torch.uint8 else x.float()


def data_key(config: dict) -> str:
    """Which data set a model was trained on, for sharing the real samples between rows."""
    skip = {
        "batch_size",
        "eval_batch_size",
        "num_workers",
        "pin_memory",
        "persistent_workers",
        "data_dir",
        "download",
        "augment",
        "val_size",
    }
    return json.dumps(
        {k: v for k, v in (config.get("data") or {}).items() if k not in skip}, sort_keys=True, default=str
    )


# -- measurements ----------------------------------------------------------------------------------------------
class Real:
    """Reference data per data set: test images and their features, or test points (loaded once)."""

    def __init__(self, extractor):
        self.extractor = extractor
        self.cache: dict[str, dict] = {}

    def images(self, key: str, datamodule, n: int) -> dict:
        from dlfound.metrics.sample_quality import features_of

        if key not in self.cache:
            test_x, _ = datamodule.load(train=False)
            real = as_unit_images(test_x[:n])
            self.cache[key] = {"features": features_of(self.extractor, real), "n": len(real), "datamodule": datamodule}
        return self.cache[key]

    def points(self, key: str, datamodule, n: int) -> dict:
        if key not in self.cache:
            test_x, _ = datamodule.load(train=False)
            self.cache[key] = {"points": test_x[:n].float(), "n": min(n, len(test_x)), "datamodule": datamodule}
        return self.cache[key]


def image_scores(extractor, real: dict, fake: torch.Tensor) -> dict:
    from dlfound.metrics.sample_quality import features_of, score_features

    finite = torch.isfinite(fake.flatten(1)).all(1)
    if not finite.all():
        return {"fid": None, "kid": None, "finite_fraction": float(finite.float().mean())}
    return score_features(real["features"], features_of(extractor, fake))


def point_scores(datamodule, real: torch.Tensor, fake: torch.Tensor) -> dict:
    from dlfound.metrics.sample_quality import score_points

    finite = torch.isfinite(fake).all(1)
    if not finite.all():
        return {"mmd": None, "finite_fraction": float(finite.float().mean())}
    centers = getattr(datamodule, "mode_centers", None)
    scores = score_points(
        real, fake, centers, getattr(datamodule, "mode_std", None), getattr(datamodule, "mode_weights", None)
    )
    if centers is not None:
        scores["modes"] = len(centers)
    return scores


def measure(entry: Entry, options: dict, device: str, real: Real) -> dict:
    from dlfound.commands.sample import load_generative
    from dlfound.errors import ConfigError

    task, datamodule = load_generative(str(entry.ckpt), device)
    if hasattr(task, "set_sampler"):
        try:
            task.set_sampler(entry.sampler, entry.steps)
        except ConfigError as err:
            raise ConfigError(
                f"{entry.arg}: {err}. Give this model its own sampler with {entry.arg}@SAMPLER[:STEPS]"
            ) from None
    elif entry.own_sampler:
        raise ConfigError(
            f"{entry.arg}: @SAMPLER applies to diffusion and score models; this checkpoint holds a "
            f"{type(task).__name__}"
        )
    row = {"kind": None, **describe(entry, task)}
    row["sampler"], row["network_evals"] = sampler_label(task)
    row["params"] = sum(p.numel() for p in task.net.parameters())
    generator = getattr(task.net, "generator", None)
    if isinstance(generator, torch.nn.Module):
        row["generator_params"] = sum(p.numel() for p in generator.parameters())
    results = entry.results or {}
    metrics = results.get("metrics") or {}
    row["epochs"] = results.get("epochs")
    row["train_time_s"] = results.get("fit_time_s", results.get("wall_time_s"))
    row["wall_time_s"] = results.get("wall_time_s")
    row["trainer"] = (results.get("choices") or {}).get("trainer")
    key = data_key(entry.config)
    label = f"{row['model']} ({row['sampler']})"
    if task.is_image:
        if real.extractor is None:
            raise ConfigError(
                f"{entry.arg} is an image model, and FID and KID need a classifier's features: {LENET_HINT}"
            )
        reference = real.images(key, datamodule, options["n"])
        fake, seconds = draw(task, options["n"], device, options["seed"], label)
        row.update(
            kind="images",
            n=len(fake),
            n_real=reference["n"],
            features=options["features"],
            bits_per_dim=metrics.get("test/bpd"),
            **image_scores(real.extractor, reference, fake),
        )
    elif task.data_shape == (2,):
        reference = real.points(key, datamodule, options["n2d"])
        fake, seconds = draw(task, options["n2d"], device, options["seed"], label)
        row.update(kind="2d", n=len(fake), n_real=reference["n"], **point_scores(datamodule, reference["points"], fake))
    else:
        raise ConfigError(
            f"{entry.arg}: this table scores images and 2-D points; the model's samples have shape {task.data_shape}"
        )
    row["sample_s_per_1k"] = seconds / len(fake) * 1000
    row.update(
        device=device, checkpoint=str(entry.ckpt), run_dir=str(entry.run_dir) if entry.run_dir else None, data_key=key
    )
    task.cpu()
    del task
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return row


def floor_rows(rows: list[dict], real: Real, options: dict) -> list[dict]:
    """The data against itself: training images vs the test images (FID/KID), a draw of the training points vs
    the test points (MMD, modes): what a perfect model would score with as many samples."""
    floors, seen = [], set()
    for row in rows:
        key = row["data_key"]
        if key in seen:
            continue
        seen.add(key)
        reference = real.cache[key]
        datamodule = reference["datamodule"]
        train_x, _ = datamodule.load(train=True)
        g = torch.Generator().manual_seed(options["seed"])
        floor = {
            "kind": row["kind"],
            "model": f"data: {row['data']} training set",
            "family": "data",
            "data": row["data"],
            "floor": True,
            "data_key": key,
        }
        if row["kind"] == "images":
            fake = as_unit_images(train_x[torch.randperm(len(train_x), generator=g)[: options["n"]]])
            floor.update(
                n=len(fake),
                n_real=reference["n"],
                features=options["features"],
                **image_scores(real.extractor, reference, fake),
            )
        else:
            fake = train_x[torch.randperm(len(train_x), generator=g)[: options["n2d"]]].float()
            floor.update(n=len(fake), n_real=reference["n"], **point_scores(datamodule, reference["points"], fake))
        floors.append(floor)
    return floors


# -- tables ----------------------------------------------------------------------------------------------------
def fmt_time(seconds) -> str:
    if seconds is None:
        return NONE
    if seconds < 100:
        return f"{seconds:.3g} s"
    if seconds < 6000:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def fmt_params(n) -> str:
    if n is None:
        return NONE
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.1f} k" if n >= 1e3 else str(n)


def fmt(value, spec: str, scale: float = 1.0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return NONE
    return format(value * scale, spec)


def train_cell(row: dict) -> str:
    if row.get("floor"):
        return NONE
    text = fmt_time(row.get("train_time_s"))
    return f"{text} ({row['trainer']})" if row.get("trainer") and text != NONE else text


def sample_cell(row: dict) -> str:
    if row.get("floor"):
        return NONE
    value = row.get("sample_s_per_1k")
    return NONE if value is None else f"{value:.3g} s"


def image_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    header = [
        "model",
        "family",
        "data",
        "sampler",
        "params",
        "epochs",
        "training",
        "bits/dim",
        "FID",
        "KID",
        "sampling / 1k",
    ]
    body = []
    for r in rows:
        diverged = r.get("finite_fraction") is not None
        body.append(
            [
                r["model"],
                r["family"],
                r["data"],
                r.get("sampler", NONE),
                fmt_params(r.get("params")),
                NONE if r.get("epochs") is None else str(r["epochs"]),
                train_cell(r),
                fmt(r.get("bits_per_dim"), ".3f"),
                "diverged" if diverged else fmt(r.get("fid"), ".2f"),
                "diverged" if diverged else fmt(r.get("kid"), ".4g"),
                sample_cell(r),
            ]
        )
    return header, body


def points_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    header = [
        "model",
        "family",
        "data",
        "sampler",
        "params",
        "epochs",
        "training",
        "modes",
        "high quality",
        "weight error",
        "MMD²",
        "sampling / 1k",
    ]
    body = []
    for r in rows:
        modes = NONE if r.get("modes_covered") is None else f"{r['modes_covered']:.0f}/{r['modes']}"
        body.append(
            [
                r["model"],
                r["family"],
                r["data"],
                r.get("sampler", NONE),
                fmt_params(r.get("params")),
                NONE if r.get("epochs") is None else str(r["epochs"]),
                train_cell(r),
                modes,
                fmt(r.get("hq_fraction"), ".1%"),
                fmt(r.get("weight_error"), ".3f"),
                "diverged" if r.get("finite_fraction") is not None else fmt(r.get("mmd"), ".4f"),
                sample_cell(r),
            ]
        )
    return header, body


def captions(kind: str, options: dict, device: str) -> str:
    if kind == "images":
        return (
            f"{options['n']:,} samples per model against the first {options['n']:,} test images; FID and KID "
            f"on the features of {options['features']}; sampling in batches of {CHUNK} on {device}."
        )
    return (
        f"{options['n2d']:,} samples per model against the test points; a mode is covered with "
        f"{20 * options['n2d'] / 2500:g} high-quality samples (within 3 std of its centre); MMD² with a sum of "
        f"Gaussian kernels; sampling on {device}."
    )


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body]
    return "\n".join(lines)


def disambiguate(rows: list[dict]) -> None:
    """Rows of different checkpoints with the same model name get their run folder's name, or the checkpoint's
    when they come from one run, added (one checkpoint with two samplers is told apart by the sampler column)."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        if not r.get("floor"):
            groups.setdefault(r["model"], []).append(r)
    for name, group in groups.items():
        runs = {r.get("run_dir") for r in group}
        checkpoints = {r.get("checkpoint") for r in group}
        for r in group:
            parts = [Path(r["run_dir"]).name] if len(runs) > 1 and r.get("run_dir") else []
            if len(checkpoints) > len(runs):
                parts.append(Path(r["checkpoint"]).stem)
            if parts:
                r["model"] = f"{name} [{'/'.join(parts)}]"


def public(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "data_key"}


def main(args: list[str]) -> None:
    from rich.table import Table

    from dlfound.commands.options import parse_options, resolve_device
    from dlfound.errors import ConfigError, DlfoundError
    from dlfound.runs.console import console, fail

    options_spec = option_table()
    try:
        opt_args, paths = split_args(args, options_spec)
        options, _ = parse_options(opt_args, options_spec, "compare_generative", USAGE)
        if options["checkpoint"] not in ("best", "last"):
            raise ConfigError(f"checkpoint={options['checkpoint']}: choose best or last")
        if not paths:
            raise ConfigError("give at least one run folder or checkpoint to compare")
        device = resolve_device(options["device"])
        entries = [resolve(arg, options["checkpoint"], options["sampler"], options["steps"]) for arg in paths]
        for entry in entries:
            check_generative(entry)
        images = [e.arg for e in entries if (e.config.get("data") or {}).get("image_size")]
        if images and not options["features"]:
            raise ConfigError(
                f"{', '.join(images)} {'is an image model' if len(images) == 1 else 'are image models'}"
                f", and FID and KID need a classifier's features (features=PATH.ckpt): {LENET_HINT}"
            )
        extractor = None
        if options["features"]:
            from dlfound.runs.build import load_feature_extractor

            extractor = load_feature_extractor(options["features"]).to(device).eval()
        real = Real(extractor)
        rows = []
        for entry in entries:
            row = measure(entry, options, device, real)
            rows.append(row)
            print(json.dumps(public(row)), flush=True)
        floors = floor_rows(rows, real, options) if options["floor"] else []
        for floor in floors:
            print(json.dumps(public(floor)), flush=True)
        everything = rows + floors
        disambiguate(everything)
        parts = []
        for kind, make, title in (("images", image_table, "Images"), ("2d", points_table, "2-D mixtures")):
            kind_rows = [r for r in everything if r["kind"] == kind]
            if not kind_rows:
                continue
            order = {key: i for i, key in reversed(list(enumerate(r["data_key"] for r in kind_rows)))}
            kind_rows.sort(key=lambda r: (order[r["data_key"]], bool(r.get("floor"))))  # each data set's floor last
            header, body = make(kind_rows)
            table = Table(title=f"{title}: {captions(kind, options, device)}", title_justify="left")
            for column in header:
                table.add_column(
                    column, justify="left" if column in ("model", "family", "data", "sampler") else "right"
                )
            for cells in body:
                table.add_row(*cells)
            console.print(table)
            parts.append(f"{captions(kind, options, device)}\n\n{markdown_table(header, body)}\n")
        if options["markdown"]:
            from dlfound.files import write_text

            out = write_text(options["markdown"], "\n".join(parts))
            console.print(f"wrote {out}")
    except DlfoundError as err:
        message = str(err).rstrip(". ")
        fail(f"compare_generative: {message}." + ("" if "Usage:" in message else f" Usage: {USAGE}"))


if __name__ == "__main__":
    main(sys.argv[1:])
