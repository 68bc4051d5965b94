"""`dlfound eval ckpt_path=PATH [key=value ...]`: re-test a checkpoint and compare with what its run recorded.

The run's config comes from inside the checkpoint; overrides such as `data.eval_batch_size=256` or
`trainer.accelerator=gpu` change it. The test set is read in a fixed order, so re-testing the checkpoint a
run tested reproduces its recorded metrics.
"""

import json
from pathlib import Path

from dlfound.errors import DlfoundError

OWN_KEYS = ("ckpt_path", "output")


def evaluate(ckpt_path: str, overrides: dict[str, str]) -> dict:
    import lightning as L

    from dlfound.checkpoint import load_checkpoint, load_task, run_config

    ckpt = load_checkpoint(ckpt_path)
    cfg = run_config(ckpt, overrides)
    datamodule, task = load_task(ckpt, cfg)
    trainer_cfg = cfg["trainer"]
    trainer = L.Trainer(accelerator=trainer_cfg.get("accelerator", "auto"), devices=1,
                        precision=trainer_cfg.get("precision", "32-true"), logger=False,
                        enable_checkpointing=False, enable_model_summary=False,
                        limit_test_batches=trainer_cfg.get("limit_test_batches"),
                        callbacks=[L.pytorch.callbacks.RichProgressBar()])
    tested = trainer.test(task, datamodule=datamodule, verbose=False)
    return {k: float(v) for loader in tested for k, v in loader.items()}


def recorded_metrics(ckpt_path: str) -> dict:
    """The metrics in results.json of the run that wrote this checkpoint, when it tested this checkpoint."""
    results = Path(ckpt_path).resolve().parent.parent / "results.json"
    if not results.is_file():
        return {}
    recorded = json.loads(results.read_text())
    tested = recorded.get("monitor", {}).get("best_checkpoint")
    if tested and Path(tested).resolve() != Path(ckpt_path).resolve():
        return {}
    return recorded.get("metrics", {})


def main(args: list[str]) -> None:
    from rich.table import Table

    from dlfound.arguments import parse_key_values
    from dlfound.console import console, fail

    try:
        kv = parse_key_values(args, "eval")
        if "ckpt_path" not in kv:
            raise DlfoundError("dlfound eval needs ckpt_path=PATH, the .ckpt file of a `dlfound train` run")
        metrics = evaluate(kv["ckpt_path"], {k: v for k, v in kv.items() if k not in OWN_KEYS})
    except DlfoundError as err:
        fail(str(err))
    recorded = recorded_metrics(kv["ckpt_path"])
    table = Table(title=f"dlfound eval  {kv['ckpt_path']}")
    table.add_column("metric", style="cyan")
    table.add_column("eval", justify="right")
    table.add_column("recorded by the run", justify="right")
    for key, value in metrics.items():
        table.add_row(key, f"{value:.6f}", f"{recorded[key]:.6f}" if key in recorded else "-")
    console.print(table)
    if "output" in kv:
        Path(kv["output"]).write_text(json.dumps({"ckpt_path": kv["ckpt_path"], "metrics": metrics,
                                                  "recorded": recorded}, indent=2))
