"""`dlfound sample ckpt_path=RUN/checkpoints/best.ckpt [n=64] [...]`: a PNG of samples from a generative checkpoint.

The checkpoint carries its run's config, so the network and task are rebuilt from the file alone (loaded with
torch.load(weights_only=True)). Options (key=value):
  n=64              how many samples
  nrow=8            samples per row of the grid
  temperature=1.0   scale of the latent noise (flows: Glow samples look best at about 0.7)
  class=K           draw class K from a conditional model (model=cvae, cgan, model.conditional=true)
  interpolate=true  rows of samples along straight lines between two random latents (VAEs, GANs): n // steps rows
  steps=8           points per interpolation row
  seed=0            random seed
  output=samples.png
  device=auto       cpu, cuda, or auto
Images give a grid of n samples; 2-D models (toy sets) a scatter plot of the samples over the test data, and for
flows a density heat-map beside it.
"""

import math
USAGE = "dlfound sample ckpt_path=PATH [n=64] [nrow=8] [temperature=1.0] [class=K] [interpolate=true] [steps=8] " \
        "[seed=0] [output=samples.png] [device=auto]"
OPTIONS = {"ckpt_path": None, "n": 64, "nrow": 8, "temperature": 1.0, "class": None, "interpolate": False,
           "steps": 8, "seed": 0, "output": "samples.png", "device": "auto"}


def _parse_value(key: str, text: str):
    from dlfound.errors import ConfigError

    default = OPTIONS[key]
    try:
        if key in ("n", "nrow", "steps", "seed") or (key == "class" and text.lower() not in ("none", "null")):
            return int(text)
        if key == "temperature":
            return float(text)
        if key == "interpolate":
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return text.lower() in ("true", "1", "yes")
    except ValueError:
        raise ConfigError(f"{key}={text!r} is not a valid value; {key} takes "
                          f"{'a number' if key != 'interpolate' else 'true or false'}") from None
    return None if key == "class" else text


def parse_args(args: list[str]) -> dict:
    from dlfound.errors import ConfigError

    options = dict(OPTIONS)
    for arg in args:
        key, eq, value = arg.partition("=")
        key = key.lstrip("+")
        if not eq or key not in OPTIONS:
            raise ConfigError(f"unknown argument {arg!r}. Usage: {USAGE}")
        options[key] = _parse_value(key, value)
    if not options["ckpt_path"]:
        raise ConfigError(f"ckpt_path=PATH is required (a checkpoint of a generative run). Usage: {USAGE}")
    for key in ("n", "nrow", "steps"):
        if options[key] < 1:
            raise ConfigError(f"{key} must be a positive integer, got {options[key]}")
    if options["temperature"] <= 0:
        raise ConfigError(f"temperature must be positive, got {options['temperature']}")
    return options


def load_generative(ckpt_path: str, device: str = "cpu"):
    """(task, datamodule) rebuilt from a dlfound checkpoint, in eval mode on `device`."""
    from dlfound.checkpoint import load_checkpoint, load_task
    from dlfound.errors import ConfigError
    from dlfound.tasks.generative import GenerativeTask

    ckpt = load_checkpoint(ckpt_path)
    datamodule, task = load_task(ckpt, ckpt["dlfound_config"])
    if not isinstance(task, GenerativeTask):
        raise ConfigError(f"{ckpt_path} holds a {type(task).__name__}, which cannot sample; `dlfound sample` needs a "
                          "checkpoint of a generative model (VAE, flow or GAN)")
    return task.to(device).eval(), datamodule


def _reference_points(datamodule, limit: int = 2000):
    try:
        x, _ = datamodule.load(train=False)
        return x[:limit].float()
    except Exception:
        return None


def render(task, datamodule, options: dict):
    """The picture (uint8 [H, W, 3]) the options ask for."""
    import torch

    from dlfound.errors import ConfigError
    from dlfound.pictures import density_plot, image_grid, scatter_plot, side_by_side, square_limits

    n, y = options["n"], options["class"]
    task.check_class(y)
    if y is None and task.num_classes and not options["interpolate"]:
        y = torch.arange(n) % task.num_classes  # a conditional model without class=: cycle through the classes
    with torch.no_grad():
        if options["interpolate"]:
            steps = options["steps"]
            rows = max(1, n // steps)
            samples = task.interpolate(rows, steps, y=0 if y is None and task.num_classes else y)
            nrow = steps
        else:
            samples = task.sample(n, temperature=options["temperature"], y=y)
            nrow = options["nrow"]
    if task.is_image:
        return image_grid(samples, nrow=nrow), samples
    if task.data_shape != (2,):
        raise ConfigError(f"dlfound sample draws images and 2-D points; this model's samples have shape "
                          f"{task.data_shape}")
    reference = _reference_points(datamodule)
    limits = square_limits(reference, samples) if reference is not None else square_limits(samples)
    centers = getattr(datamodule, "mode_centers", None)
    picture = scatter_plot(samples, reference, limits, size=512, centers=centers)
    if hasattr(task, "log_prob"):
        picture = side_by_side(picture, density_plot(task.log_prob, limits, size=512, device=task.device))
    return picture, samples


def main(args: list[str]) -> None:
    from dlfound.console import console, fail
    from dlfound.errors import DlfoundError

    try:
        options = parse_args(args)
        import torch

        from dlfound.pictures import save_png

        device = options["device"]
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise DlfoundError("device=cuda but no CUDA GPU is available; use device=cpu")
        torch.manual_seed(options["seed"])
        task, datamodule = load_generative(options["ckpt_path"], device)
        picture, samples = render(task, datamodule, options)
        out = save_png(picture, options["output"])
    except DlfoundError as err:
        fail(str(err))
    shape = "x".join(str(s) for s in samples.shape[1:])
    console.print(f"wrote {out} ({picture.shape[1]}x{picture.shape[0]} pixels): {len(samples)} samples of {shape}"
                  f" from {type(task).__name__}")
    if not math.isfinite(float(samples.float().abs().max())):
        console.print("[yellow]warning: some samples are not finite; the model may have diverged[/]")
