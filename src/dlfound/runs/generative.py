"""Generative checkpoints scored the same way, whatever their family (VAEs, flows, GANs, diffusion and score
models): the table of `dlfound compare` (FID and KID on a classifier's features for images; modes, high-quality
fraction and MMD² for 2-D mixtures; bits/dim, training and sampling time beside them), and the class accuracy of a
conditional model's samples that `dlfound guided` reports.
"""

import importlib
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dlfound.errors import ConfigError
from dlfound.runs.build import load_generative
from dlfound.runs.records import best_checkpoint
from dlfound.runs.results import read_results

CHUNK = 500
NONE = "–"
LENET_HINT = (
    "make one with `dlfound train experiment=mnist_lenet5 trainer.max_epochs=2` and pass "
    "features=RUN/checkpoints/best-*.ckpt (or features=pixels for distances on raw pixels)"
)


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
    if "@" not in arg or Path(arg).exists():
        return arg, None, None
    path, _, spec = arg.rpartition("@")
    name, _, steps = spec.partition(":")
    if not name or (steps and not steps.isdigit()) or steps == "0":
        raise ConfigError(
            f"{arg!r}: after '@' give a sampler and optionally its steps, e.g. RUN@ddim:50 or RUN@annealed"
        )
    return path, name, int(steps) if steps else None


def pick_checkpoint(run_dir: Path, which: str) -> Path:
    """best: the checkpoint the run was tested on (so its bits/dim belong to it), else the newest best-*.ckpt, else
    last.ckpt; last: last.ckpt."""
    folder = run_dir / "checkpoints"
    last = folder / "last.ckpt"
    if which == "best":
        tested = best_checkpoint(run_dir)
        if tested is not None:
            return tested
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
        ckpt, run_dir = pick_checkpoint(path, which), path
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


def draw(task, n: int, device: str, seed: int, label: str, temperature: float = 1.0) -> tuple[torch.Tensor, float]:
    """n samples (CPU) in batches of CHUNK, and the seconds they took (synchronised on a GPU; a small warm-up
    draw first there, outside the timing). Conditional models cycle through their classes; `temperature` scales
    the latent noise."""
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
                x = task.sample(m, temperature=temperature, y=y)
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
        fake, seconds = draw(task, options["n"], device, options["seed"], label, options["temperature"])
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
        fake, seconds = draw(task, options["n2d"], device, options["seed"], label, options["temperature"])
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


RUN_COLUMNS = ["model", "family", "data", "sampler", "params", "epochs", "training"]


def run_cells(r: dict) -> list[str]:
    """The columns every comparison table opens with: which run, its size and its training."""
    epochs = NONE if r.get("epochs") is None else str(r["epochs"])
    return [
        r["model"],
        r["family"],
        r["data"],
        r.get("sampler", NONE),
        fmt_params(r.get("params")),
        epochs,
        train_cell(r),
    ]


def image_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    header = [*RUN_COLUMNS, "bits/dim", "FID", "KID", "sampling / 1k"]
    body = []
    for r in rows:
        diverged = r.get("finite_fraction") is not None
        quality = ["diverged"] * 2 if diverged else [fmt(r.get("fid"), ".2f"), fmt(r.get("kid"), ".4g")]
        body.append([*run_cells(r), fmt(r.get("bits_per_dim"), ".3f"), *quality, sample_cell(r)])
    return header, body


def points_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    header = [*RUN_COLUMNS, "modes", "high quality", "weight error", "MMD²", "sampling / 1k"]
    body = []
    for r in rows:
        modes = NONE if r.get("modes_covered") is None else f"{r['modes_covered']:.0f}/{r['modes']}"
        mmd = "diverged" if r.get("finite_fraction") is not None else fmt(r.get("mmd"), ".4f")
        body.append(
            [
                *run_cells(r),
                modes,
                fmt(r.get("hq_fraction"), ".1%"),
                fmt(r.get("weight_error"), ".3f"),
                mmd,
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


def compare(paths: list[str], options: dict, device: str, on_row=None) -> list[dict]:
    """Every model's row (and, with floor=true, each data set's own row), labelled apart; `on_row(row)` sees each
    row as soon as it is measured. Non-generative checkpoints and image models without features= are refused
    before anything is sampled."""
    entries = [resolve(arg, options["checkpoint"], options["sampler"], options["steps"]) for arg in paths]
    for entry in entries:
        check_generative(entry)
    images = [e.arg for e in entries if (e.config.get("data") or {}).get("image_size")]
    if images and not options["features"]:
        raise ConfigError(
            f"{', '.join(images)} {'is an image model' if len(images) == 1 else 'are image models'}, "
            f"and FID and KID need a classifier's features (features=PATH.ckpt): {LENET_HINT}"
        )
    extractor = None
    if options["features"]:
        from dlfound.runs.build import load_feature_extractor

        extractor = load_feature_extractor(options["features"]).to(device).eval()
    real = Real(extractor)
    rows = []
    for entry in entries:
        rows.append(measure(entry, options, device, real))
        if on_row:
            on_row(public(rows[-1]))
    floors = floor_rows(rows, real, options) if options["floor"] else []
    for floor in floors:
        if on_row:
            on_row(public(floor))
    everything = rows + floors
    disambiguate(everything)
    return everything


def tables(rows: list[dict], options: dict, device: str) -> list[tuple[str, str, list[str], list[list[str]]]]:
    """(title, caption, header, cells) of the images table and the 2-D table, where there are such rows; each data
    set's rows together, its floor last."""
    found = []
    for kind, make, title in (("images", image_table, "Images"), ("2d", points_table, "2-D mixtures")):
        kind_rows = [r for r in rows if r["kind"] == kind]
        if not kind_rows:
            continue
        order = {key: i for i, key in reversed(list(enumerate(r["data_key"] for r in kind_rows)))}
        kind_rows.sort(key=lambda r: (order[r["data_key"]], bool(r.get("floor"))))
        found.append((title, captions(kind, options, device), *make(kind_rows)))
    return found


# -- the class a conditional model was asked for ---------------------------------------------------------------
def requested_class_shares(
    task,
    datamodule,
    classifier,
    n: int,
    scales: list[float | None],
    sampler: str | None,
    steps: int | None,
    seed: int,
    device: str,
):
    """For each guidance scale (None: the run's own), how often `classifier` labels n samples (cycling through the
    classes) as the class they were asked for, overall and per class, beside the classifier's accuracy on the first
    n real test images: the check of classifier-free guidance (Ho & Salimans 2022), or of any conditional VAE or
    GAN (a task with num_classes). Yields one dict per scale."""
    test_x, test_y = datamodule.load(train=False)
    real = as_unit_images(test_x[:n])
    reference = float((classifier.classify(real.to(device)).argmax(1).cpu() == test_y[:n]).float().mean())
    for scale in scales:
        torch.manual_seed(seed)
        if hasattr(task, "set_sampler"):
            task.set_sampler(sampler, steps, None, scale)
        elif scale is not None or sampler or steps:
            raise ConfigError(
                "guidance=, sampler= and steps= apply to diffusion models; this checkpoint holds a "
                f"{type(task).__name__}"
            )
        wanted = torch.arange(n) % task.num_classes
        seen = []
        with torch.no_grad():
            for chunk in wanted.split(CHUNK):
                seen.append(classifier.classify(task.sample(len(chunk), y=chunk.to(device))).argmax(1).cpu())
        hits = torch.cat(seen) == wanted
        per_class = [round(float(hits[wanted == k].float().mean()), 4) for k in range(task.num_classes)]
        yield {
            "n": n,
            "sampling": getattr(task, "sampling", None),
            "as_requested": round(float(hits.float().mean()), 4),
            "per_class": per_class,
            "classifier_on_test_images": round(reference, 4),
        }
