"""`dlfound eval ckpt_path=PATH [key=value ...]`: re-test a checkpoint and compare with what its run recorded.

The run's config comes from inside the checkpoint; overrides such as `data.eval_batch_size=256` or
`trainer.accelerator=gpu` change it. The test set is read in a fixed order, so re-testing the checkpoint a
run tested reproduces its recorded metrics.
"""

import json
from pathlib import Path

from dlfound.errors import DlfoundError
from dlfound.runs.options import Option, parse_options, print_help_if_asked
from dlfound.runs.records import best_checkpoint
from dlfound.runs.results import read_results

USAGE = "dlfound eval ckpt_path=PATH [output=metrics.json] [CONFIG OVERRIDES such as data.eval_batch_size=256]"
OPTIONS = {"ckpt_path": Option(required=True), "output": Option()}


def evaluate(ckpt_path: str, overrides: dict[str, str]) -> dict:
    import lightning as L

    from dlfound.runs.build import load_task
    from dlfound.runs.checkpoint import load_checkpoint, run_config

    ckpt = load_checkpoint(ckpt_path)
    cfg = run_config(ckpt, overrides)
    datamodule, task = load_task(ckpt, cfg)
    trainer_cfg = cfg["trainer"]
    trainer = L.Trainer(
        accelerator=trainer_cfg.get("accelerator", "auto"),
        devices=1,
        precision=trainer_cfg.get("precision", "32-true"),
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        limit_test_batches=trainer_cfg.get("limit_test_batches"),
        callbacks=[L.pytorch.callbacks.RichProgressBar()],
    )
    tested = trainer.test(task, datamodule=datamodule, verbose=False)
    return {k: float(v) for loader in tested for k, v in loader.items()}


def recorded_metrics(ckpt_path: str) -> dict:
    """The metrics in results.json of the run that wrote this checkpoint, when it tested this checkpoint."""
    run_dir = Path(ckpt_path).resolve().parent.parent
    results = read_results(run_dir)
    if results is None:
        return {}
    tested = best_checkpoint(run_dir)
    if (results.get("monitor") or {}).get("best_checkpoint") and (
        tested is None or tested.resolve() != Path(ckpt_path).resolve()
    ):
        return {}  # the run was tested on another checkpoint (or on one deleted since)
    return results.get("metrics", {})


def main(args: list[str]) -> None:
    if print_help_if_asked(args, __doc__):
        return
    from rich.table import Table

    from dlfound.runs.console import console, fail

    try:
        options, overrides = parse_options(args, OPTIONS, "eval", USAGE, pass_unknown=True)
        metrics = evaluate(options["ckpt_path"], overrides)
    except DlfoundError as err:
        fail(str(err))
    recorded = recorded_metrics(options["ckpt_path"])
    table = Table(title=f"dlfound eval  {options['ckpt_path']}")
    table.add_column("metric", style="cyan")
    table.add_column("eval", justify="right")
    table.add_column("recorded by the run", justify="right")
    for key, value in metrics.items():
        table.add_row(key, f"{value:.6f}", f"{recorded[key]:.6f}" if key in recorded else "-")
    console.print(table)
    if options["output"]:
        from dlfound.files import fresh_output_path

        out, renamed = fresh_output_path(options["output"])
        if renamed:
            console.print(renamed, highlight=False, markup=False)
        out.write_text(
            json.dumps({"ckpt_path": options["ckpt_path"], "metrics": metrics, "recorded": recorded}, indent=2)
        )
