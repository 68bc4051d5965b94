"""`dlfound sample ckpt_path=RUN/checkpoints/best.ckpt [n=64] [...]`: a PNG of samples from a generative checkpoint.

The checkpoint carries its run's config, so the network and task are rebuilt from the file alone (loaded with
torch.load(weights_only=True)). Options (key=value):
  n=64              how many samples
  nrow=8            samples per row of the grid
  temperature=1.0   scale of the latent noise (flows: Glow samples look best at about 0.7)
  class=K           draw class K from a conditional model (model=cvae, cgan, model.conditional=true)
  interpolate=true  rows of samples along straight lines between two random latents (VAEs, GANs): n // steps rows
  steps=K           points per interpolation row (default 8); for diffusion models the denoising steps (ddpm: all
                    T, ddim: 50), for score models the Langevin steps per noise level
  sampler=NAME      diffusion models (task=ddpm): ddpm (ancestral) or ddim; score models (task=score): annealed or
                    langevin (plain Langevin dynamics at the smallest noise level). Default: the run's task.sampler
  eta=E             DDIM's eta (0 deterministic; 1 DDPM's variance)
  guidance=W        classifier-free guidance scale for class-conditional diffusion models (with class=K)
  path=true         a strip of one sample's way from noise to data (diffusion and score models) instead of a grid
  seed=0            random seed
  output=samples.png
  device=auto       cpu, cuda, or auto
Images give a grid of n samples; 2-D models (toy sets) a scatter plot of the samples over the test data, and for
flows a density heat-map beside it. Diffusion and score models show a progress bar over their steps.
"""

import math

from dlfound.commands.options import Option, parse_options

USAGE = (
    "dlfound sample ckpt_path=PATH [n=64] [nrow=8] [temperature=1.0] [class=K] [interpolate=true] [steps=K] "
    "[sampler=NAME] [eta=E] [guidance=W] [path=true] [seed=0] [output=samples.png] [device=auto]"
)
OPTIONS = {
    "ckpt_path": Option(required=True),
    "n": Option(64, int, minimum=1),
    "nrow": Option(8, int, minimum=1),
    "temperature": Option(1.0, float, above=0),
    "class": Option(None, int),
    "interpolate": Option(False, bool),
    "steps": Option(None, int, minimum=1),
    "sampler": Option(None),
    "eta": Option(None, float),
    "guidance": Option(None, float),
    "path": Option(False, bool),
    "seed": Option(0, int),
    "output": Option("samples.png"),
    "device": Option("auto"),
}
# Options only the step-by-step samplers (diffusion and score models) take.
SAMPLER_OPTIONS = ("sampler", "eta", "guidance", "path")
INTERPOLATION_STEPS = 8


def load_generative(ckpt_path: str, device: str = "cpu"):
    """(task, datamodule) rebuilt from a dlfound checkpoint, in eval mode on `device`."""
    from dlfound.errors import ConfigError
    from dlfound.runs.build import load_task
    from dlfound.runs.checkpoint import load_checkpoint, run_config
    from dlfound.tasks.generative import GenerativeTask

    ckpt = load_checkpoint(ckpt_path)
    # Sampling measures nothing, so the feature network that scored samples during training is not needed.
    overrides = {"task.fid_features": "null"} if "fid_features" in ckpt["dlfound_config"].get("task", {}) else {}
    datamodule, task = load_task(ckpt, run_config(ckpt, overrides))
    if not isinstance(task, GenerativeTask):
        raise ConfigError(
            f"{ckpt_path} holds a {type(task).__name__}, which cannot sample; `dlfound sample` needs a "
            "checkpoint of a generative model (VAE, flow, GAN, diffusion or score model)"
        )
    return task.to(device).eval(), datamodule


def _reference_points(datamodule, limit: int = 2000):
    try:
        x, _ = datamodule.load(train=False)
        return x[:limit].float()
    except Exception:
        return None


def choose_sampler(task, options: dict) -> bool:
    """Hand the sampler options to a diffusion or score task (True), or refuse them for other families (False)."""
    from dlfound.errors import ConfigError

    if hasattr(task, "set_sampler"):
        if options["interpolate"]:
            raise ConfigError(f"interpolate=true needs a latent space (VAEs, GANs); {type(task).__name__} has none")
        if options["path"] and not task.is_image:
            raise ConfigError(
                "path=true draws one image's way from noise as a strip; this model's samples are "
                "points, which the plain picture shows"
            )
        task.set_sampler(options["sampler"], options["steps"], options["eta"], options["guidance"])
        return True
    given = [f"{key}=" for key in SAMPLER_OPTIONS if options[key] not in (None, False)]
    if given:
        raise ConfigError(
            f"{', '.join(given)} apply to diffusion and score models (task=ddpm, task=score); this "
            f"checkpoint holds a {type(task).__name__}. Drop {' and '.join(given)}."
        )
    return False


def sample_with_progress(task, n: int, y, temperature: float, path: bool):
    """A diffusion or score task's samples (or one sample's path), with a progress bar over the steps."""
    from rich.progress import Progress

    from dlfound.runs.console import console

    with Progress(console=console, transient=True) as progress:
        bar = progress.add_task(f"sampling with {type(task).__name__}", total=None)

        def advance(i: int, total: int, x) -> None:
            progress.update(bar, completed=i + 1, total=total)

        if path:
            return task.sample_path(None if y is None else y[:1], on_step=advance)
        return task.sample(n, temperature=temperature, y=y, on_step=advance)


def render(task, datamodule, options: dict):
    """The picture (uint8 [H, W, 3]) the options ask for."""
    import torch

    from dlfound.errors import ConfigError
    from dlfound.plots import density_plot, image_grid, scatter_plot, side_by_side, square_limits

    n, y = options["n"], options["class"]
    task.check_class(y)
    stepwise = choose_sampler(task, options)
    if y is None and task.num_classes and not options["interpolate"]:
        y = torch.arange(n) % task.num_classes  # a conditional model without class=: cycle through the classes
    with torch.no_grad():
        if options["interpolate"]:
            steps = options["steps"] or INTERPOLATION_STEPS
            rows = max(1, n // steps)
            samples = task.interpolate(rows, steps, y=0 if y is None and task.num_classes else y)
            nrow = steps
        elif stepwise:
            y = task.labels(y, n)
            samples = sample_with_progress(task, n, y, options["temperature"], options["path"])
            nrow = len(samples) if options["path"] else options["nrow"]
        else:
            samples = task.sample(n, temperature=options["temperature"], y=y)
            nrow = options["nrow"]
    if task.is_image:
        return image_grid(samples, nrow=nrow), samples
    if task.data_shape != (2,):
        raise ConfigError(
            f"dlfound sample draws images and 2-D points; this model's samples have shape {task.data_shape}"
        )
    reference = _reference_points(datamodule)
    limits = square_limits(reference, samples) if reference is not None else square_limits(samples)
    centers = getattr(datamodule, "mode_centers", None)
    picture = scatter_plot(samples, reference, limits, size=512, centers=centers)
    if hasattr(task, "log_prob"):
        picture = side_by_side(picture, density_plot(task.log_prob, limits, size=512, device=task.device))
    return picture, samples


def main(args: list[str]) -> None:
    from dlfound.errors import DlfoundError
    from dlfound.runs.console import console, fail

    try:
        options, _ = parse_options(args, OPTIONS, "sample", USAGE)
        import torch

        from dlfound.commands.options import resolve_device
        from dlfound.image_files import write_picture

        device = resolve_device(options["device"])
        torch.manual_seed(options["seed"])
        task, datamodule = load_generative(options["ckpt_path"], device)
        picture, samples = render(task, datamodule, options)
        out = write_picture(picture, options["output"])
    except DlfoundError as err:
        fail(str(err))
    shape = "x".join(str(s) for s in samples.shape[1:])
    console.print(
        f"wrote {out} ({picture.shape[1]}x{picture.shape[0]} pixels): {len(samples)} samples of {shape}"
        f" from {type(task).__name__}"
    )
    if not math.isfinite(float(samples.float().abs().max())):
        console.print("[yellow]warning: some samples are not finite; the model may have diverged[/]")
