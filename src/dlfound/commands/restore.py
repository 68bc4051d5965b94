"""`dlfound restore`: apply a trained restoration model to one image of any size.

    dlfound restore ckpt_path=CKPT input=IMAGE output=OUT [task=...] [degradation options] [reference=CLEAN]

task (default: what the checkpoint was trained for)
  denoise   sigma=25 adds Gaussian noise of that level to the input first (a simulation: the input is then the
            clean reference); without sigma the input is taken as already noisy.
  sr        scale=2 shrinks the input by 2 (MATLAB bicubic) and enlarges it back, then restores it (simulation,
            output the input's size); upscale=2 enlarges a real low-resolution input by 2, then restores it.
  deblur    blurs the input with a blur_size x blur_size Gaussian of std blur_sigma (defaults: the checkpoint's,
            else 25 and 1.6) plus noise sigma (default 0), then deblurs. With degrade=false the input is
            taken as already blurred by that kernel.
  inpaint   drops mask_ratio of the pixels at random (or those black in mask=MASK.png), then fills them.
            With degrade=false the input is taken as already masked, and mask=MASK.png is required.
  A checkpoint trained for that very degradation restores in one pass. A denoiser (a checkpoint trained on
  noise) deblurs and inpaints by plug-and-play (dlfound.ops.plug_and_play): pnp_method=hqs|admm, pnp_iters=24 (40 for
  inpainting), pnp_sigma_start=49, pnp_sigma_end=1, pnp_lambda=0.23.

Also: reference=CLEAN prints PSNR/SSIM of the degraded and restored images against it (a simulation uses the
input itself); degraded_output=PATH saves the degraded image; seed=0 seeds the simulated noise and mask;
device=auto|cpu|cuda. Gray networks restore RGB photos channel by channel, or on the luma (YCbCr, chroma
enlarged by bicubic) when they were trained on luma (data.channels=y, the SR convention).
"""

from pathlib import Path

import torch

from dlfound.commands.options import Option, parse_options
from dlfound.errors import DlfoundError

USAGE = "dlfound restore ckpt_path=RUN/checkpoints/best-*.ckpt input=IMAGE output=OUT.png [task=...] [...]"
# The task each training degradation serves.
TASKS = {"noise": "denoise", "bicubic": "sr", "blur": "deblur", "inpaint": "inpaint"}
OPTIONS = {
    "ckpt_path": Option(required=True),
    "input": Option(required=True),
    "output": Option(required=True),
    "reference": Option(),
    "degraded_output": Option(),
    "task": Option(),
    "sigma": Option(None, float, minimum=0),
    "scale": Option(None, int, minimum=2),
    "upscale": Option(None, int, minimum=2),
    "blur_size": Option(None, int, minimum=1),
    "blur_sigma": Option(None, float, above=0),
    "mask_ratio": Option(None, float, minimum=0),
    "mask": Option(),
    "degrade": Option(True, bool),
    "seed": Option(0, int),
    "device": Option("auto"),
    "pnp_method": Option("hqs"),
    "pnp_iters": Option(None, int, minimum=1),
    "pnp_sigma_start": Option(None, float, above=0),
    "pnp_sigma_end": Option(None, float, above=0),
    "pnp_lambda": Option(None, float, above=0),
}


class RestoreError(DlfoundError):
    """A `dlfound restore` argument that cannot work."""


def load_image(path: str, what: str) -> torch.Tensor:
    """[1, C, H, W] float in [0, 1], C = 1 for gray images and 3 otherwise."""
    from dlfound.image_files import read_image

    try:
        return read_image(path)[None].float() / 255
    except DlfoundError as err:
        raise RestoreError(f"{what}={path}: {err}") from None


# -- the network on images of any channel count --------------------------------------------------------------
def make_runner(net: torch.nn.Module, net_channels: int, luma: bool):
    """image [1, C, H, W] -> restored image of the same shape, whatever C and the network's channels are."""
    from dlfound.ops.colour import rgb_to_ycbcr, ycbcr_to_rgb

    @torch.no_grad()
    def run(x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c == net_channels:
            return net(x)
        if net_channels == 1 and luma:  # restore the luma, keep the (already enlarged) chroma
            ycc = rgb_to_ycbcr(x)
            return ycbcr_to_rgb(torch.cat([net(ycc[:, :1]), ycc[:, 1:]], 1))
        if net_channels == 1:
            return net(x.transpose(0, 1)).transpose(0, 1)
        return net(x.repeat(1, net_channels, 1, 1)).mean(1, keepdim=True)

    return run


def restore(options: dict) -> dict:
    """Runs `dlfound restore` from parsed options; returns what it measured."""
    from dlfound.commands.options import resolve_device
    from dlfound.data.degradations import Degradation
    from dlfound.image_files import check_suffix, write_image
    from dlfound.metrics.restoration import psnr, ssim
    from dlfound.ops.colour import quantize
    from dlfound.ops.resize import imresize
    from dlfound.runs.build import load_trained

    if Path(options["output"]).resolve() == Path(options["input"]).resolve():
        raise RestoreError(f"output={options['output']} would overwrite the input; choose another file name")
    for key in ("output", "degraded_output"):
        if options[key]:
            check_suffix(options[key])
    image = load_image(options["input"], "input")

    datamodule, task, _ = load_trained(
        options["ckpt_path"], "RestorationTask", "train one with e.g. `dlfound train experiment=dncnn_sigma25`"
    )
    device = resolve_device(options["device"])
    image = image.to(device)
    trained = datamodule.degrade
    run = make_runner(task.to(device).eval().model, datamodule.in_channels, datamodule.channels == "y")

    mode = options["task"] or TASKS[trained.kind]
    if mode not in TASKS.values():
        raise RestoreError(f"task={mode}: choose denoise, sr, deblur or inpaint")
    direct = TASKS[trained.kind] == mode
    if not direct and not (trained.kind == "noise" and mode in ("deblur", "inpaint")):
        raise RestoreError(
            f"this checkpoint was trained for {TASKS[trained.kind]} ({trained.describe()}); it "
            f"cannot do task={mode}. Only a denoiser serves other tasks, by plug-and-play "
            f"(task=deblur or task=inpaint)."
        )
    generator = torch.Generator().manual_seed(options["seed"])
    sigma = options["sigma"]
    reference = load_image(options["reference"], "reference").to(device) if options["reference"] else None
    simulated = options["degrade"]
    shave, luma_metric = 0, False
    info = {"task": mode, "method": "network" if direct else "plug-and-play"}

    if mode == "denoise":
        simulated = sigma is not None
        degraded = Degradation("noise", sigma=sigma)(image, generator) if simulated else image
        restored = run(degraded)
    elif mode == "sr":
        scale, upscale = options["scale"], options["upscale"]
        if (scale is None) == (upscale is None):
            raise RestoreError(
                "task=sr needs scale=N (shrink the input by N and restore it, a simulation) or "
                "upscale=N (enlarge a real low-resolution input by N)"
            )
        simulated = scale is not None
        if simulated:
            degraded = quantize(Degradation("bicubic", scale=scale)(image))
        else:
            degraded = quantize(imresize(image, float(upscale)))
        shave, luma_metric = scale or upscale, image.shape[1] == 3
        restored = run(degraded)
    else:
        degraded, restored = inverse_problem(options, mode, image, trained, run, direct, generator, info)
    if simulated and reference is None:
        reference = image

    restored = quantize(restored)
    write_image(restored, options["output"])
    if options["degraded_output"]:
        write_image(degraded, options["degraded_output"])
    info.update({"output": options["output"], "size": list(restored.shape[-2:])})
    if reference is not None:
        if reference.shape != restored.shape:
            raise RestoreError(
                f"reference is {tuple(reference.shape[-3:])} (C, H, W) but the restored image is "
                f"{tuple(restored.shape[-3:])}; give the clean version of the input"
            )
        measured_input = degraded.clamp(0, 1) if mode != "denoise" else degraded
        info.update(
            {
                "psnr_input": psnr(measured_input, reference, shave, luma_metric).item(),
                "psnr": psnr(restored, reference, shave, luma_metric).item(),
                "ssim_input": ssim(degraded.clamp(0, 1), reference, shave, luma_metric).item(),
                "ssim": ssim(restored, reference, shave, luma_metric).item(),
            }
        )
    return info


def inverse_problem(options, mode, image, trained, run, direct, generator, info):
    """Deblurring or inpainting: simulate the degradation (the data module's own Degradation class) or take the
    input as degraded, then restore it by the network trained for it or by plug-and-play with a denoiser."""
    from dlfound.data.degradations import Degradation
    from dlfound.ops import plug_and_play as pnp

    kind = "blur" if mode == "deblur" else "inpaint"
    same = trained.kind == kind  # a network trained for this very degradation: its settings are the defaults
    sigma = options["sigma"]
    noise = sigma if sigma is not None else (trained.sigma if same and not isinstance(trained.sigma, list) else 0.0)

    def setting(key: str, fallback):
        return options[key] if options[key] is not None else (getattr(trained, key) if same else fallback)

    degradation = Degradation(
        kind,
        sigma=noise if options["degrade"] else 0.0,
        blur_size=setting("blur_size", 25),
        blur_sigma=setting("blur_sigma", 1.6),
        mask_ratio=setting("mask_ratio", 0.5),
    )
    mask = None
    if kind == "blur":
        size = degradation.blur_size
        info["degradation"] = f"Gaussian blur {size}x{size} sigma {degradation.blur_sigma}"
    else:
        if not 0 <= degradation.mask_ratio < 1:
            raise RestoreError(f"mask_ratio={degradation.mask_ratio} must lie in [0, 1)")
        if options["mask"]:
            mask = (load_image(options["mask"], "mask").mean(1, keepdim=True) > 0.5).float().to(image.device)
            if mask.shape[-2:] != image.shape[-2:]:
                raise RestoreError(
                    f"mask={options['mask']} is {tuple(mask.shape[-2:])} but the input is "
                    f"{tuple(image.shape[-2:])} (H, W); they must match"
                )
        elif not options["degrade"]:
            raise RestoreError("task=inpaint degrade=false needs mask=MASK.png (white: observed, black: missing)")
    if options["degrade"]:
        degraded = degradation(image, generator, mask=mask)
        mask = degradation.last_mask
    else:
        degraded = image
    if kind == "inpaint":
        info["degradation"] = f"{1 - mask.mean().item():.0%} of the pixels missing"
    if direct:
        return degraded, run(degraded)

    defaults = pnp.gaussian_deblur_default if kind == "blur" else pnp.inpaint_default
    base = defaults(options["pnp_iters"])
    try:
        pnp_cfg = pnp.PnPConfig(
            iters=base.iters,
            method=options["pnp_method"],
            sigma_start=options["pnp_sigma_start"] or base.sigma_start,
            sigma_end=options["pnp_sigma_end"] or base.sigma_end,
            lam=options["pnp_lambda"] or base.lam,
        )
    except ValueError as err:
        raise RestoreError(str(err)) from None
    blind = isinstance(trained.sigma, (list, tuple))
    denoise = pnp.network_denoiser(run, None if blind else float(trained.sigma))
    data = (
        pnp.DeblurData(degraded, degradation.kernel().to(image.device))
        if kind == "blur"
        else pnp.InpaintData(degraded, mask)
    )
    info.update({"pnp": f"{pnp_cfg.method} x{pnp_cfg.iters}", "denoiser": trained.describe()})
    return degraded, pnp.solve(data, denoise, pnp_cfg, noise_sigma=noise)


def main(args: list[str]) -> None:
    from rich.table import Table

    from dlfound.runs.console import console, fail

    try:
        options, _ = parse_options(args, OPTIONS, "restore", USAGE)
        info = restore(options)
    except DlfoundError as err:
        fail(str(err))
    table = Table(title=f"dlfound restore  {options['input']} -> {info['output']}", title_style="bold")
    table.add_column("", style="cyan")
    table.add_column("value", justify="right")
    for key in ("task", "method", "degradation", "pnp", "denoiser"):
        if key in info:
            table.add_row(key, str(info[key]))
    table.add_row("output size (H x W)", " x ".join(map(str, info["size"])))
    for key, label in (
        ("psnr_input", "PSNR degraded (dB)"),
        ("psnr", "PSNR restored (dB)"),
        ("ssim_input", "SSIM degraded"),
        ("ssim", "SSIM restored"),
    ):
        if key in info:
            table.add_row(label, f"{info[key]:.4f}" if "ssim" in key else f"{info[key]:.2f}")
    console.print(table)
