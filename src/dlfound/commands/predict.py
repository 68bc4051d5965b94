"""`dlfound predict ckpt_path=PATH input=IMAGE|FOLDER [top_k=5] [output=predictions.csv] [device=auto]`: classify
images with a trained classifier.

The run is rebuilt from its checkpoint alone, and each image is prepared as the run's data module prepares its
test images (read as gray or RGB, resized to the run's image size, scaled and standardised). For one image the
top-k classes and their probabilities are printed; for a folder (searched recursively) they are written to a
CSV file, one row per image, and the first rows are printed. Class names come from the checkpoint (an image
folder's class folders); runs on sets without names show class numbers.
"""

import csv
from pathlib import Path

from dlfound.errors import ConfigError, DlfoundError
from dlfound.runs.options import Option, parse_options, print_help_if_asked

USAGE = "dlfound predict ckpt_path=PATH input=IMAGE|FOLDER [top_k=5] [output=predictions.csv] [device=auto]"
OPTIONS = {
    "ckpt_path": Option(required=True),
    "input": Option(required=True),
    "top_k": Option(5, int, minimum=1),
    "output": Option(),
    "device": Option("auto"),
}
BATCH = 64  # images classified at once
SHOWN = 10  # rows of a folder's predictions printed


def load_classifier(ckpt_path: str, device: str):
    """(task in eval mode on device, data module, class names) of a classification run's checkpoint."""
    from dlfound.runs.build import load_trained

    datamodule, task, cfg = load_trained(
        ckpt_path,
        "ClassificationTask",
        "`dlfound predict` needs a classifier, "
        "e.g. one trained with `dlfound train data=imagefolder data.root=FOLDER "
        "model=resnet18`",
    )
    if not getattr(datamodule, "image_size", None) or not hasattr(datamodule, "prepare"):
        raise ConfigError(
            f"{ckpt_path} was trained on {cfg['data'].get('_target_')}, not on images; "
            "`dlfound predict` classifies image files"
        )
    num_classes = cfg["task"]["num_classes"]
    names = cfg["data"].get("class_names") or [str(i) for i in range(num_classes)]
    return task.to(device).eval(), datamodule, names


def image_inputs(path: Path) -> list[Path]:
    from dlfound.data.imagefolder import image_files
    from dlfound.image_files import IMAGE_SUFFIXES

    if path.is_dir():
        files = image_files(path)
        if not files:
            raise DlfoundError(
                f"no images ({', '.join(IMAGE_SUFFIXES)}) under {path}; give an image or a folder of images as input="
            )
        return files
    if not path.is_file():
        raise DlfoundError(f"input={path}: no such file or folder. Give an image or a folder of images.")
    return [path]


def predict(options: dict) -> tuple[list[dict], list[str]]:
    """(one row per readable image: path and its top-k (class, probability) pairs; the problems of the others)."""
    import torch

    from dlfound.data.imagefolder import load_image
    from dlfound.runs.options import resolve_device

    device = resolve_device(options["device"])
    files = image_inputs(Path(options["input"]))
    task, datamodule, names = load_classifier(options["ckpt_path"], device)
    k = min(options["top_k"], len(names))
    rows, problems = [], []
    for start in range(0, len(files), BATCH):
        images, paths = [], []
        for path in files[start : start + BATCH]:
            try:
                images.append(load_image(path, datamodule.in_channels, datamodule.image_size))
                paths.append(path)
            except DlfoundError as err:
                problems.append(str(err))
        if not images:
            continue
        x = datamodule.prepare(torch.stack(images).to(device), training=False)
        with torch.no_grad():
            probs = torch.softmax(task(x).float(), dim=-1)
        top = probs.topk(k, dim=-1)
        for path, p, i in zip(paths, top.values.tolist(), top.indices.tolist(), strict=True):
            rows.append({"path": str(path), "top": [(names[c], v) for c, v in zip(i, p, strict=True)]})
    if not rows:
        raise DlfoundError(f"no readable image in {options['input']}: {'; '.join(problems[:3])}")
    return rows, problems


def write_csv(rows: list[dict], path: Path) -> None:
    k = len(rows[0]["top"])
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", *(f"{what}_{i}" for i in range(1, k + 1) for what in ("class", "prob"))])
        for row in rows:
            writer.writerow([row["path"], *(x for name, p in row["top"] for x in (name, f"{p:.6f}"))])


def main(args: list[str]) -> None:
    if print_help_if_asked(args, __doc__):
        return
    from rich.markup import escape
    from rich.table import Table

    from dlfound.files import fresh_output_path
    from dlfound.runs.console import console, fail

    try:
        options, _ = parse_options(args, OPTIONS, "predict", USAGE)
        rows, problems = predict(options)
        folder = Path(options["input"]).is_dir()
        output = options["output"] or ("predictions.csv" if folder else None)
        if output:
            output, renamed = fresh_output_path(output)
            if renamed:
                console.print(renamed, highlight=False, markup=False)
            write_csv(rows, output)
    except DlfoundError as err:
        fail(str(err))
    if not folder:
        table = Table(title=f"dlfound predict  {rows[0]['path']}")
        table.add_column("rank", justify="right")
        table.add_column("class", style="cyan")
        table.add_column("probability", justify="right")
        for rank, (name, p) in enumerate(rows[0]["top"], 1):
            table.add_row(str(rank), name, f"{p:.4f}")
    else:
        table = Table(title=f"dlfound predict  {options['input']}  (first {min(SHOWN, len(rows))} of {len(rows)})")
        table.add_column("image", style="cyan")
        table.add_column("class")
        table.add_column("probability", justify="right")
        for row in rows[:SHOWN]:
            table.add_row(row["path"], row["top"][0][0], f"{row['top'][0][1]:.4f}")
    console.print(table)
    for problem in problems:
        console.print(f"[yellow]skipped:[/] {escape(problem)}", highlight=False)
    if output:
        console.print(f"wrote {len(rows)} predictions to {output}")
