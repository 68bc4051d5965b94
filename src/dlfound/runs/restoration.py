"""Restoring one image of any size with a trained restoration network: the library of `dlfound restore`.

A checkpoint trained for a degradation restores it in one pass; a denoiser also deblurs and inpaints as the prior
of a plug-and-play solver (dlfound.ops.plug_and_play). `restore(options)` takes the command's parsed options
(see dlfound.commands.restore) and returns what it measured.
"""

from pathlib import Path

import torch

from dlfound.errors import DlfoundError

# The task each training degradation serves.
TASKS = {"noise": "denoise", "bicubic": "sr", "blur": "deblur", "inpaint": "inpaint"}


class RestoreError(DlfoundError):
    """A `dlfound restore` argument that cannot work."""


def load_image(path: str, what: str) -> torch.Tensor:
    """[1, C, H, W] float in [0, 1], C = 1 for gray images and 3 otherwise."""
    from dlfound.image_files import read_image

    try:
        return read_image(path)[None].float() / 255
    except DlfoundError as err:
        raise RestoreError(f"{what}={path}: {err}") from None


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


def check_paths(options: dict) -> None:
    from dlfound.image_files import check_suffix

    if Path(options["output"]).resolve() == Path(options["input"]).resolve():
        raise RestoreError(f"output={options['output']} would overwrite the input; choose another file name")
    for key in ("output", "degraded_output"):
        if options[key]:
            check_suffix(options[key])


def choose_mode(options: dict, trained) -> tuple[str, bool]:
    """(the task to do, whether the network was trained for it); a network serves another task only as a
    denoiser inside plug-and-play."""
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
    return mode, direct


def restore(options: dict) -> dict:
    """Runs `dlfound restore` from parsed options: loads the network, degrades (a simulation) or takes the input
    as degraded, restores, writes the output, and measures against the reference; returns what it measured."""
    from dlfound.files import fresh_output_path
    from dlfound.image_files import write_image
    from dlfound.ops.colour import quantize
    from dlfound.runs.build import load_trained
    from dlfound.runs.options import resolve_device

    check_paths(options)
    options, renamed = dict(options), []
    for key in ("output", "degraded_output"):
        if options[key]:
            options[key], note = fresh_output_path(options[key])
            renamed += [note] if note else []
    image = load_image(options["input"], "input")
    datamodule, task, _ = load_trained(
        options["ckpt_path"], "RestorationTask", "train one with e.g. `dlfound train experiment=dncnn_sigma25`"
    )
    device = resolve_device(options["device"])
    image = image.to(device)
    reference = load_image(options["reference"], "reference").to(device) if options["reference"] else None
    trained = datamodule.degrade
    run = make_runner(task.to(device).eval().model, datamodule.in_channels, datamodule.channels == "y")
    mode, direct = choose_mode(options, trained)
    info = {"task": mode, "method": "network" if direct else "plug-and-play", "renamed": renamed}
    generator = torch.Generator().manual_seed(options["seed"])

    if mode == "denoise":
        degraded, restored, simulated, shave, luma_metric = denoise(options, image, run, generator)
    elif mode == "sr":
        degraded, restored, simulated, shave, luma_metric = super_resolve(options, image, run)
    else:
        degraded, restored = inverse_problem(options, mode, image, trained, run, direct, generator, info)
        simulated, shave, luma_metric = options["degrade"], 0, False

    restored = quantize(restored)
    write_image(restored, options["output"])
    if options["degraded_output"]:
        write_image(degraded, options["degraded_output"])
    info.update({"output": options["output"], "size": list(restored.shape[-2:])})
    if reference is None and simulated:
        reference = image
    if reference is not None:
        info.update(measure(mode, degraded, restored, reference, shave, luma_metric))
    return info


def denoise(options: dict, image: torch.Tensor, run, generator):
    """sigma=S adds noise to a clean input first (a simulation); without it the input is already noisy."""
    from dlfound.data.degradations import Degradation

    simulated = options["sigma"] is not None
    degraded = Degradation("noise", sigma=options["sigma"])(image, generator) if simulated else image
    return degraded, run(degraded), simulated, 0, False


def super_resolve(options: dict, image: torch.Tensor, run):
    """scale=N shrinks the input by N and enlarges it back (a simulation); upscale=N enlarges a real
    low-resolution input. Measured like the SR papers: on the luma of colour images, N pixels shaved."""
    from dlfound.data.degradations import Degradation
    from dlfound.ops.colour import quantize
    from dlfound.ops.resize import imresize

    scale, upscale = options["scale"], options["upscale"]
    if (scale is None) == (upscale is None):
        raise RestoreError(
            "task=sr needs scale=N (shrink the input by N and restore it, a simulation) or "
            "upscale=N (enlarge a real low-resolution input by N)"
        )
    simulated = scale is not None
    degraded = quantize(Degradation("bicubic", scale=scale)(image) if simulated else imresize(image, float(upscale)))
    return degraded, run(degraded), simulated, scale or upscale, image.shape[1] == 3


def measure(
    mode: str, degraded: torch.Tensor, restored: torch.Tensor, reference: torch.Tensor, shave: int, luma: bool
) -> dict:
    """PSNR and SSIM of the degraded and the restored image against the clean reference."""
    from dlfound.metrics.restoration import psnr, ssim

    if reference.shape != restored.shape:
        raise RestoreError(
            f"reference is {tuple(reference.shape[-3:])} (C, H, W) but the restored image is "
            f"{tuple(restored.shape[-3:])}; give the clean version of the input"
        )
    measured_input = degraded.clamp(0, 1) if mode != "denoise" else degraded
    return {
        "psnr_input": psnr(measured_input, reference, shave, luma).item(),
        "psnr": psnr(restored, reference, shave, luma).item(),
        "ssim_input": ssim(degraded.clamp(0, 1), reference, shave, luma).item(),
        "ssim": ssim(restored, reference, shave, luma).item(),
    }


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

    data = (
        pnp.DeblurData(degraded, degradation.kernel().to(image.device))
        if kind == "blur"
        else pnp.InpaintData(degraded, mask)
    )
    return degraded, plug_and_play(options, kind, data, trained, run, noise, info)


def plug_and_play(options: dict, kind: str, data, trained, run, noise: float, info: dict) -> torch.Tensor:
    """The restored image by a plug-and-play solver (HQS or ADMM) whose prior is the trained denoiser; the
    solver's settings default to the published ones for the problem, each overridable by a pnp_* option."""
    from dlfound.ops import plug_and_play as pnp

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
    info.update({"pnp": f"{pnp_cfg.method} x{pnp_cfg.iters}", "denoiser": trained.describe()})
    return pnp.solve(data, denoise, pnp_cfg, noise_sigma=noise)
