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
  noise) deblurs and inpaints by plug-and-play (dlfound.pnp): pnp_method=hqs|admm, pnp_iters=24 (40 for
  inpainting), pnp_sigma_start=49, pnp_sigma_end=1, pnp_lambda=0.23.

Also: reference=CLEAN prints PSNR/SSIM of the degraded and restored images against it (a simulation uses the
input itself); degraded_output=PATH saves the degraded image; seed=0 seeds the simulated noise and mask;
device=auto|cpu|cuda. Gray networks restore RGB photos channel by channel, or on the luma (YCbCr, chroma
enlarged by bicubic) when they were trained on luma (data.channels=y, the SR convention).
"""

from pathlib import Path

import torch

from dlfound.errors import DlfoundError

TASKS = {"noise": "denoise", "bicubic": "sr", "blur": "deblur", "inpaint": "inpaint"}
KEYS = ("ckpt_path", "input", "output", "reference", "degraded_output", "task", "sigma", "scale", "upscale",
        "blur_size", "blur_sigma", "mask_ratio", "mask", "degrade", "seed", "device", "pnp_method", "pnp_iters",
        "pnp_sigma_start", "pnp_sigma_end", "pnp_lambda")


class RestoreError(DlfoundError):
    """A `dlfound restore` argument that cannot work."""


# -- images --------------------------------------------------------------------------------------------------
def load_image(path: str | Path, what: str = "input") -> torch.Tensor:
    """[1, C, H, W] float in [0, 1], C = 1 for gray images and 3 otherwise."""
    import numpy as np
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise RestoreError(f"{what}={path}: no such file. Give the path of a PNG, JPEG, BMP or TIFF image.")
    try:
        with Image.open(path) as image:
            mode = "L" if image.mode in ("L", "I", "I;16", "1", "LA") else "RGB"
            array = np.asarray(image.convert(mode), dtype=np.float32) / 255.0
    except (OSError, ValueError) as err:
        raise RestoreError(f"{what}={path} is not an image dlfound can read ({err})") from None
    x = torch.from_numpy(array.copy())
    return (x[None] if x.dim() == 2 else x.permute(2, 0, 1))[None]


def save_image(x: torch.Tensor, path: str | Path) -> None:
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() not in (".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg"):
        raise RestoreError(f"output={path}: give a file name ending in .png (or .bmp, .tif, .jpg)")
    path.parent.mkdir(parents=True, exist_ok=True)
    array = x[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path)


# -- arguments -----------------------------------------------------------------------------------------------
def _number(kv: dict, key: str, default=None, kind=float):
    if key not in kv:
        return default
    try:
        value = kind(kv[key])
    except ValueError:
        raise RestoreError(f"{key}={kv[key]!r} is not a {'whole ' if kind is int else ''}number") from None
    if value < 0:
        raise RestoreError(f"{key}={kv[key]} must not be negative")
    return value


def _flag(kv: dict, key: str, default: bool) -> bool:
    value = kv.get(key)
    if value is None:
        return default
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise RestoreError(f"{key}={value!r}: use true or false")


# -- the network on images of any channel count --------------------------------------------------------------
def make_runner(net: torch.nn.Module, net_channels: int, luma: bool):
    """image [1, C, H, W] -> restored image of the same shape, whatever C and the network's channels are."""
    from dlfound.data.degradations import rgb_to_ycbcr, ycbcr_to_rgb

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


def restore(kv: dict) -> dict:
    """Runs `dlfound restore` from parsed key=value arguments; returns what it measured."""
    from dlfound.checkpoint import load_checkpoint, load_task, run_config
    from dlfound.data import degradations as D
    from dlfound.restoration_metrics import psnr, ssim

    unknown = [k for k in kv if k not in KEYS]
    if unknown:
        raise RestoreError(f"dlfound restore does not take {', '.join(unknown)}; it takes {', '.join(KEYS)}")
    for key in ("ckpt_path", "input", "output"):
        if not kv.get(key):
            raise RestoreError(f"dlfound restore needs {key}=...: ckpt_path=RUN/checkpoints/best-*.ckpt "
                               "input=IMAGE output=OUT.png")
    if Path(kv["output"]).resolve() == Path(kv["input"]).resolve():
        raise RestoreError(f"output={kv['output']} would overwrite the input; choose another file name")
    image = load_image(kv["input"])

    ckpt = load_checkpoint(kv["ckpt_path"])
    cfg = run_config(ckpt, {})
    if not str(cfg.get("task", {}).get("_target_", "")).endswith("RestorationTask"):
        raise RestoreError(f"{kv['ckpt_path']} was not trained by the restoration task (task={cfg['task'].get('_target_')}); "
                           "train one with e.g. `dlfound train experiment=dncnn_sigma25`")
    datamodule, task = load_task(ckpt, cfg)
    device = kv.get("device", "auto")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") or (device == "cuda" and not torch.cuda.is_available()):
        raise RestoreError(f"device={device}: use cpu, cuda (when a GPU is present) or auto")
    net = task.net.to(device).eval()
    image = image.to(device)
    trained = datamodule.degrade
    net_channels = datamodule.in_channels
    run = make_runner(net, net_channels, datamodule.channels == "y")

    mode = kv.get("task", TASKS[trained.kind])
    if mode not in TASKS.values():
        raise RestoreError(f"task={mode}: choose denoise, sr, deblur or inpaint")
    direct = TASKS[trained.kind] == mode
    if not direct and not (trained.kind == "noise" and mode in ("deblur", "inpaint")):
        raise RestoreError(f"this checkpoint was trained for {TASKS[trained.kind]} ({trained.describe()}); it "
                           f"cannot do task={mode}. Only a denoiser serves other tasks, by plug-and-play "
                           f"(task=deblur or task=inpaint).")
    generator = torch.Generator().manual_seed(_number(kv, "seed", 0, int))
    degrade = _flag(kv, "degrade", True)
    sigma = _number(kv, "sigma")
    reference = load_image(kv["reference"], "reference").to(device) if kv.get("reference") else None
    shave, luma_metric = 0, False
    info = {"task": mode, "method": "network" if direct else "plug-and-play"}

    if mode == "denoise":
        degraded = image
        if sigma is not None:
            degraded = D.gaussian_noise(image, sigma, generator)
            reference = image if reference is None else reference
        restored = run(degraded)
    elif mode == "sr":
        scale, upscale = _number(kv, "scale", None, int), _number(kv, "upscale", None, int)
        if (scale is None) == (upscale is None):
            raise RestoreError("task=sr needs scale=N (shrink the input by N and restore it, a simulation) or "
                               "upscale=N (enlarge a real low-resolution input by N)")
        if (scale or upscale) < 2:
            raise RestoreError("the SR factor must be 2 or more")
        if scale:
            degraded = D.quantize(D.bicubic_degrade(image, scale))
            reference = image if reference is None else reference
            shave, luma_metric = scale, image.shape[1] == 3
        else:
            degraded = D.quantize(D.imresize(image, float(upscale)))
            shave, luma_metric = upscale, image.shape[1] == 3
        restored = run(degraded)
    else:
        degraded, restored = _inverse_problem(kv, mode, image, trained, run, direct, degrade, sigma, generator,
                                              info)
        if degrade:
            reference = image if reference is None else reference

    restored = D.quantize(restored)
    save_image(restored, kv["output"])
    if kv.get("degraded_output"):
        save_image(degraded, kv["degraded_output"])
    info.update({"output": kv["output"], "size": list(restored.shape[-2:])})
    if reference is not None:
        if reference.shape != restored.shape:
            raise RestoreError(f"reference is {tuple(reference.shape[-3:])} (C, H, W) but the restored image is "
                               f"{tuple(restored.shape[-3:])}; give the clean version of the input")
        info.update({
            "psnr_input": psnr(degraded.clamp(0, 1) if mode != "denoise" else degraded, reference, shave, luma_metric).item(),
            "psnr": psnr(restored, reference, shave, luma_metric).item(),
            "ssim_input": ssim(degraded.clamp(0, 1), reference, shave, luma_metric).item(),
            "ssim": ssim(restored, reference, shave, luma_metric).item(),
        })
    return info


def _inverse_problem(kv, mode, image, trained, run, direct, degrade, sigma, generator, info):
    """Deblurring or inpainting: simulate (or take) the degraded image, then restore it by the network
    trained for it or by plug-and-play with a denoiser."""
    from dlfound import pnp
    from dlfound.data import degradations as D

    same = trained.kind == ("blur" if mode == "deblur" else "inpaint")
    noise = sigma if sigma is not None else (trained.sigma if same and not isinstance(trained.sigma, list) else 0.0)
    if mode == "deblur":
        size = _number(kv, "blur_size", trained.blur_size if same else 25, int)
        width = _number(kv, "blur_sigma", trained.blur_sigma if same else 1.6)
        if size < 1 or width <= 0:
            raise RestoreError("blur_size must be at least 1 and blur_sigma positive")
        kernel = D.gaussian_kernel(size, width).to(image.device)
        degraded = D.blur(image, kernel) if degrade else image
        info["degradation"] = f"Gaussian blur {size}x{size} sigma {width}"
    else:
        if kv.get("mask"):
            mask = (load_image(kv["mask"], "mask").mean(1, keepdim=True) > 0.5).float().to(image.device)
            if mask.shape[-2:] != image.shape[-2:]:
                raise RestoreError(f"mask={kv['mask']} is {tuple(mask.shape[-2:])} but the input is "
                                   f"{tuple(image.shape[-2:])} (H, W); they must match")
        elif not degrade:
            raise RestoreError("task=inpaint degrade=false needs mask=MASK.png (white: observed, black: missing)")
        else:
            ratio = _number(kv, "mask_ratio", trained.mask_ratio if same else 0.5)
            if not 0 <= ratio < 1:
                raise RestoreError(f"mask_ratio={ratio} must lie in [0, 1)")
            mask = D.random_mask(image.shape, ratio, generator, image.device)
        degraded = image * mask if degrade else image
        info["degradation"] = f"{1 - mask.mean().item():.0%} of the pixels missing"
    if degrade and noise:
        degraded = D.gaussian_noise(degraded, noise, generator)
    if direct:
        return degraded, run(degraded)

    iters = _number(kv, "pnp_iters", None, int)
    base = pnp.gaussian_deblur_default(iters) if mode == "deblur" else pnp.inpaint_default(iters)
    try:
        pnp_cfg = pnp.PnPConfig(iters=base.iters, method=kv.get("pnp_method", "hqs"),
                                sigma_start=_number(kv, "pnp_sigma_start", base.sigma_start),
                                sigma_end=_number(kv, "pnp_sigma_end", base.sigma_end),
                                lam=_number(kv, "pnp_lambda", base.lam))
    except ValueError as err:
        raise RestoreError(str(err)) from None
    blind = isinstance(trained.sigma, (list, tuple))
    denoise = pnp.network_denoiser(run, None if blind else float(trained.sigma))
    data = pnp.DeblurData(degraded, kernel) if mode == "deblur" else pnp.InpaintData(degraded, mask)
    info.update({"pnp": f"{pnp_cfg.method} x{pnp_cfg.iters}", "denoiser": trained.describe()})
    return degraded, pnp.solve(data, denoise, pnp_cfg, noise_sigma=noise)


def main(args: list[str]) -> None:
    from rich.table import Table

    from dlfound.arguments import parse_key_values
    from dlfound.console import console, fail

    try:
        kv = parse_key_values(args, "restore")
        info = restore(kv)
    except DlfoundError as err:
        fail(str(err))
    table = Table(title=f"dlfound restore  {kv['input']} -> {info['output']}", title_style="bold")
    table.add_column("", style="cyan")
    table.add_column("value", justify="right")
    for key in ("task", "method", "degradation", "pnp", "denoiser"):
        if key in info:
            table.add_row(key, str(info[key]))
    table.add_row("output size (H x W)", " x ".join(map(str, info["size"])))
    for key, label in (("psnr_input", "PSNR degraded (dB)"), ("psnr", "PSNR restored (dB)"),
                       ("ssim_input", "SSIM degraded"), ("ssim", "SSIM restored")):
        if key in info:
            table.add_row(label, f"{info[key]:.4f}" if "ssim" in key else f"{info[key]:.2f}")
    console.print(table)
