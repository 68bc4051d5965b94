"""What a training step costs beyond the network's own work: Lightning's per-hook profiling is a shared no-op unless
a profiler is asked for, and the check for a non-finite loss stops a run at the step it happens (on the CPU)."""

from lightning.pytorch.profilers import SimpleProfiler

from dlfound.runs.build import build_trainer, compose
from dlfound.runs.no_profiler import NOTHING, NoProfiler


def trainer_with(tmp_path, *overrides):
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(compose(["logger=none", "callbacks=none", *overrides]), resolve=True)
    return build_trainer(cfg, tmp_path, [], "val/loss", "min")


def test_no_profiler_asked_for_costs_one_shared_context(tmp_path):
    trainer = trainer_with(tmp_path)
    assert isinstance(trainer.profiler, NoProfiler)
    assert trainer.profiler.profile("[Callback]x.on_train_batch_end") is NOTHING
    with trainer.profiler.profile("a step") as entered:
        assert entered is None


def test_a_profiler_asked_for_is_lightnings(tmp_path):
    assert isinstance(trainer_with(tmp_path, "debug=profile").profiler, SimpleProfiler)
